internal import CYaml

/// Finds YAML anchors (`&name`), aliases (`*name`), tags (`!name`) and deep nesting with libyaml's
/// scanner, before any node is built.
///
/// A config never needs them, and aliases are how a tiny file turns into a huge tree: aliases used as
/// mapping keys made a 451-byte file cost 46 s of CPU in the composer's duplicate-key check. Deep flow
/// nesting (`[[[…]]]`) makes libyaml's own scanner quadratic (100,000 levels cost two minutes of CPU),
/// so the scan stops at ``maximumDepth``. Tags would let a config ask for types Moat never reads
/// (`!!python/object`): refused too, so the file means what it says. `&`, `*` or `!` inside a quoted
/// string or a comment is not a token and passes. The only libyaml (C) code in Moat is here.
enum YAMLReferenceScan {
    /// A reference found in the text.
    struct Reference: Equatable {
        /// "anchor", "alias", "tag" or "nesting".
        let kind: String
        /// 1-based line, as editors count.
        let line: Int
    }

    /// How deep collections may nest; Moat's own config is four levels deep.
    static let maximumDepth = 32

    /// The first anchor, alias or tag token in `text`, or the first collection nested deeper than
    /// ``maximumDepth``; nil when there is none. A scanner error stops the scan (nil): the composer that
    /// runs next reports it with its own line and column.
    static func firstReference(in text: String) -> Reference? {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer -> Reference? in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { return nil }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var depth = 0
            while true {
                var token = yaml_token_t()
                guard yaml_parser_scan(&parser, &token) == 1 else { return nil }
                defer { yaml_token_delete(&token) }
                let line = Int(token.start_mark.line) + 1
                switch token.type {
                case YAML_ANCHOR_TOKEN: return Reference(kind: "anchor", line: line)
                case YAML_ALIAS_TOKEN: return Reference(kind: "alias", line: line)
                case YAML_TAG_TOKEN: return Reference(kind: "tag", line: line)
                case YAML_FLOW_SEQUENCE_START_TOKEN, YAML_FLOW_MAPPING_START_TOKEN, YAML_BLOCK_SEQUENCE_START_TOKEN,
                    YAML_BLOCK_MAPPING_START_TOKEN:
                    depth += 1
                    if depth > maximumDepth { return Reference(kind: "nesting", line: line) }
                case YAML_FLOW_SEQUENCE_END_TOKEN, YAML_FLOW_MAPPING_END_TOKEN, YAML_BLOCK_END_TOKEN:
                    depth -= 1
                case YAML_STREAM_END_TOKEN, YAML_NO_TOKEN: return nil
                default: continue
                }
            }
        }
    }
}
