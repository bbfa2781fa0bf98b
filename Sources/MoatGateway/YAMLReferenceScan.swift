internal import CYaml

/// Finds YAML anchors (`&name`) and aliases (`*name`) with libyaml's scanner, before any node is built.
///
/// A config never needs them, and aliases are how a tiny file turns into a huge tree: aliases used as
/// mapping keys made a 451-byte file cost 46 s of CPU in the composer's duplicate-key check. The scanner
/// only tokenises (linear in the text), so the file is refused before that work starts; `&` or `*` inside
/// a quoted string or a comment is not a token and passes. The only libyaml (C) code in Moat is here.
enum YAMLReferenceScan {
    /// A reference found in the text.
    struct Reference: Equatable {
        /// "anchor" or "alias".
        let kind: String
        /// 1-based line, as editors count.
        let line: Int
    }

    /// The first anchor or alias token in `text`, or nil when there is none. A scanner error stops the
    /// scan (nil): the composer that runs next reports it with its own line and column.
    static func firstReference(in text: String) -> Reference? {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer -> Reference? in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { return nil }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            while true {
                var token = yaml_token_t()
                guard yaml_parser_scan(&parser, &token) == 1 else { return nil }
                defer { yaml_token_delete(&token) }
                let line = Int(token.start_mark.line) + 1
                switch token.type {
                case YAML_ANCHOR_TOKEN: return Reference(kind: "anchor", line: line)
                case YAML_ALIAS_TOKEN: return Reference(kind: "alias", line: line)
                case YAML_STREAM_END_TOKEN, YAML_NO_TOKEN: return nil
                default: continue
                }
            }
        }
    }
}
