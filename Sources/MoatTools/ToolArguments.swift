import MoatCore

/// A JSON value as the strict reader of tool arguments sees it.
///
/// Objects keep their members as read; the reader has already refused duplicate keys.
enum JSONValue: Sendable, Hashable {
    case string(String)
    /// A number, kept as its text (tool arguments never need arithmetic).
    case number(String)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    /// What kind of value this is, for messages to the model.
    var kindName: String {
        switch self {
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// The canonical text: keys sorted by their UTF-8 bytes, no insignificant space, strings escaped as
    /// RFC 8785 does (``JSONText/quote(_:)``), so equal values always give equal text.
    var canonical: String {
        switch self {
        case .string(let text): return JSONText.quote(text)
        case .number(let text): return text
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        case .array(let items): return "[" + items.map(\.canonical).joined(separator: ",") + "]"
        case .object(let members):
            let sorted = members.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
            return "{" + sorted.map { JSONText.quote($0.key) + ":" + $0.value.canonical }.joined(separator: ",") + "}"
        }
    }
}

/// Reads the arguments of a tool call (model output: untrusted) strictly.
///
/// The top level must be one object; a key may appear once; strings must be valid UTF-8 with valid
/// escapes (a lone surrogate is refused); nesting is at most 16 deep and the text at most
/// ``maximumBytes``. Every refusal says what was wrong, for the model to correct its call.
struct JSONArgumentReader {
    /// Arguments larger than this are refused before they are parsed (8 MiB: the largest content
    /// `write_file` may be configured to take, 4 MiB, fits with its JSON escapes).
    static let maximumBytes = 8 << 20
    static let maximumDepth = 16

    private let bytes: [UInt8]
    private var index = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The top-level object of `text`.
    static func object(_ text: String, tool: String) throws(ToolError) -> [String: JSONValue] {
        let bytes = Array(text.utf8)
        guard bytes.count <= maximumBytes else {
            throw ToolError(.invalidArguments, "\(tool): the arguments are larger than \(maximumBytes >> 20) MiB")
        }
        var reader = JSONArgumentReader(bytes)
        do throws(Failure) {
            reader.skipSpace()
            guard reader.peek == UInt8(ascii: "{") else {
                throw reader.fail("the arguments must be one JSON object, like {\"path\": \"notes.txt\"}")
            }
            let value = try reader.value(depth: 0)
            reader.skipSpace()
            guard reader.index == bytes.count else { throw reader.fail("unexpected text after the JSON object") }
            guard case .object(let members) = value else { throw reader.fail("the arguments must be a JSON object") }
            return members
        } catch {
            throw ToolError(.invalidArguments, "\(tool): the arguments are not valid: \(error.message)")
        }
    }

    private struct Failure: Error {
        let message: String
    }

    private func fail(_ message: String) -> Failure {
        Failure(message: "\(message) (at byte \(index))")
    }

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipSpace() {
        while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0a || byte == 0x0d { index += 1 }
    }

    private mutating func expect(_ literal: String) throws(Failure) {
        let expected = Array(literal.utf8)
        guard index + expected.count <= bytes.count, Array(bytes[index..<index + expected.count]) == expected else {
            throw fail("expected \(literal)")
        }
        index += expected.count
    }

    private mutating func value(depth: Int) throws(Failure) -> JSONValue {
        guard depth < Self.maximumDepth else { throw fail("nested more than \(Self.maximumDepth) levels deep") }
        skipSpace()
        guard let byte = peek else { throw fail("the JSON ends too early") }
        switch byte {
        case UInt8(ascii: "{"):
            index += 1
            var members: [String: JSONValue] = [:]
            skipSpace()
            if peek == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else { throw fail("expected a \"key\"") }
                let key = try string()
                guard members[key] == nil else {
                    throw fail("the key \"\(PrintableText.excerpt(key, limit: 40))\" appears twice; give it once")
                }
                skipSpace()
                try expect(":")
                members[key] = try value(depth: depth + 1)
                skipSpace()
                if peek == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                try expect("}")
                return .object(members)
            }
        case UInt8(ascii: "["):
            index += 1
            var items: [JSONValue] = []
            skipSpace()
            if peek == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            while true {
                items.append(try value(depth: depth + 1))
                skipSpace()
                if peek == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                try expect("]")
                return .array(items)
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        default:
            return .number(try number())
        }
    }

    private mutating func number() throws(Failure) -> String {
        let start = index
        func digits() -> Int {
            let first = index
            while let byte = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { index += 1 }
            return index - first
        }
        if peek == UInt8(ascii: "-") { index += 1 }
        let leadingZero = peek == UInt8(ascii: "0")
        let integerDigits = digits()
        guard integerDigits > 0, !(leadingZero && integerDigits > 1) else { throw fail("not a JSON value") }
        if peek == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw fail("a number needs digits after its point") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw fail("a number needs digits in its exponent") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func hexQuad() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count,
            let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
        else { throw fail("a \\u escape needs four hex digits") }
        index += 4
        return value
    }

    private mutating func string() throws(Failure) -> String {
        index += 1  // the opening quote
        var output: [UInt8] = []
        while true {
            guard let byte = peek else { throw fail("a string is not closed with \"") }
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: output, as: UTF8.self) else {
                    throw fail("a string is not valid UTF-8")
                }
                return text
            case UInt8(ascii: "\\"):
                guard let escape = peek else { throw fail("a string ends inside an escape") }
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escape)
                case UInt8(ascii: "b"): output.append(0x08)
                case UInt8(ascii: "f"): output.append(0x0c)
                case UInt8(ascii: "n"): output.append(0x0a)
                case UInt8(ascii: "r"): output.append(0x0d)
                case UInt8(ascii: "t"): output.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hexQuad()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard peek == UInt8(ascii: "\\") else { throw fail("a lone UTF-16 surrogate in a \\u escape") }
                        index += 1
                        try expect("u")
                        let low = try hexQuad()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("a lone UTF-16 surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw fail("a lone UTF-16 surrogate in a \\u escape")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw fail("an invalid \\u escape") }
                    output += Array(String(Character(unicode)).utf8)
                default:
                    throw fail("an unknown escape \\\(Character(Unicode.Scalar(escape)))")
                }
            case 0x00..<0x20:
                throw fail("a raw control character in a string (write it as an escape such as \\n)")
            default:
                output.append(byte)
            }
        }
    }
}

/// One parameter of a built-in tool: its name, the JSON type it takes and whether it must be given.
struct ToolParameter: Sendable {
    enum Kind: Sendable {
        case string
        /// An object whose values are all strings (HTTP headers).
        case stringMap
    }

    let name: String
    let kind: Kind
    let required: Bool
    let description: String

    static func string(_ name: String, _ description: String, required: Bool = true) -> ToolParameter {
        ToolParameter(name: name, kind: .string, required: required, description: description)
    }
}

/// The checked arguments of one call: the values by name and their canonical JSON.
struct ToolArguments: Sendable {
    let values: [String: JSONValue]

    /// Reads `text` against `parameters`: unknown fields, missing required ones and wrong types are refused
    /// with a message naming the field and what it should be.
    init(_ text: String, tool: String, parameters: [ToolParameter]) throws(ToolError) {
        let members = try JSONArgumentReader.object(text, tool: tool)
        let names = parameters.map(\.name)
        for key in members.keys.sorted() where !names.contains(key) {
            throw ToolError(
                .invalidArguments,
                "\(tool): unknown field \"\(PrintableText.excerpt(key, limit: 40))\"; its fields are "
                    + names.joined(separator: ", ")
            )
        }
        var values: [String: JSONValue] = [:]
        for parameter in parameters {
            guard let value = members[parameter.name], value != .null || parameter.required else {
                if parameter.required {
                    throw ToolError(.invalidArguments, "\(tool): the field \"\(parameter.name)\" is required")
                }
                continue
            }
            switch (parameter.kind, value) {
            case (.string, .string):
                break
            case (.stringMap, .object(let entries))
            where entries.values.allSatisfy({ if case .string = $0 { true } else { false } }):
                break
            case (.string, _):
                throw ToolError(
                    .invalidArguments, "\(tool): \"\(parameter.name)\" must be a string, not \(value.kindName)")
            case (.stringMap, _):
                throw ToolError(
                    .invalidArguments,
                    "\(tool): \"\(parameter.name)\" must be an object whose values are strings, like {\"Accept\": \"text/plain\"}"
                )
            }
            values[parameter.name] = value
        }
        self.values = values
    }

    /// The string value of `name` ("" when an optional string was not given).
    func string(_ name: String) -> String {
        if case .string(let text) = values[name] { return text }
        return ""
    }

    /// The entries of the string map `name`, sorted by key.
    func stringMap(_ name: String) -> [(name: String, value: String)] {
        guard case .object(let entries) = values[name] else { return [] }
        return entries.keys.sorted().compactMap { key in
            if case .string(let value) = entries[key] { return (key, value) }
            return nil
        }
    }

    /// The canonical JSON of the checked arguments.
    var canonical: String { JSONValue.object(values).canonical }

    /// The JSON Schema (an `object` schema, no other fields allowed) of `parameters`.
    static func schema(_ parameters: [ToolParameter]) -> String {
        var properties: [String: JSONValue] = [:]
        for parameter in parameters {
            var property: [String: JSONValue] = ["description": .string(parameter.description)]
            switch parameter.kind {
            case .string: property["type"] = .string("string")
            case .stringMap:
                property["type"] = .string("object")
                property["additionalProperties"] = .object(["type": .string("string")])
            }
            properties[parameter.name] = .object(property)
        }
        let schema: [String: JSONValue] = [
            "type": .string("object"),
            "properties": .object(properties),
            "required": .array(parameters.filter(\.required).map { .string($0.name) }),
            "additionalProperties": .bool(false),
        ]
        return JSONValue.object(schema).canonical
    }
}
