import Foundation
import Hummingbird
import MoatAuth
import MoatCore
import MoatHTTP
import NIOCore

// The owner API's request bodies, one per Docs/openapi.yaml schema (an inline schema gets the name of its
// route). Each reads its fields in the order the handler used to, so the first error a bad body meets is
// the same; unknown fields are ignored; `null` is refused like any other wrong type, because no request
// field of the API is nullable and a client sending null has a bug worth hearing about.

extension OwnerAPI {
    /// `POST /api/setup` (`SetupRequest`).
    struct SetupRequest: Decodable {
        var password: SecretField
        let token: String
        let username: String?

        enum CodingKeys: String, CodingKey, CaseIterable { case token, username, password }

        init(from decoder: any Decoder) throws {
            let body = try decoder.container(keyedBy: CodingKeys.self)
            password = try body.secret(.password)
            token = try body.required(.token)
            username = try body.optional(.username)
        }
    }

    /// `POST /api/auth/login` (`LoginRequest`).
    struct LoginRequest: Decodable {
        var password: SecretField
        let username: String
        let code: String?

        enum CodingKeys: String, CodingKey, CaseIterable { case username, password, code }

        init(from decoder: any Decoder) throws {
            let body = try decoder.container(keyedBy: CodingKeys.self)
            password = try body.secret(.password)
            username = try body.required(.username)
            code = try body.optional(.code)
        }
    }

    /// `POST /api/auth/password` (`PasswordChange`).
    struct PasswordChange: Decodable {
        var currentPassword: SecretField
        var newPassword: SecretField

        enum CodingKeys: String, CodingKey, CaseIterable {
            case currentPassword = "current_password"
            case newPassword = "new_password"
        }

        init(from decoder: any Decoder) throws {
            let body = try decoder.container(keyedBy: CodingKeys.self)
            currentPassword = try body.secret(.currentPassword)
            newPassword = try body.secret(.newPassword)
        }
    }

    /// `POST /api/auth/revoke-all`; the body may be empty.
    struct RevokeAllRequest: Decodable {
        let apiTokens: Bool

        enum CodingKeys: String, CodingKey, CaseIterable { case apiTokens = "api_tokens" }

        init(from decoder: any Decoder) throws {
            apiTokens = try decoder.container(keyedBy: CodingKeys.self).optional(.apiTokens) ?? false
        }
    }

    /// `POST /api/auth/totp/enrol`: the current password.
    struct TOTPEnrolRequest: Decodable {
        var password: SecretField

        enum CodingKeys: String, CodingKey, CaseIterable { case password }

        init(from decoder: any Decoder) throws {
            password = try decoder.container(keyedBy: CodingKeys.self).secret(.password)
        }
    }

    /// `POST /api/auth/totp/confirm`: a code from the authenticator.
    struct TOTPConfirmRequest: Decodable {
        let code: String

        enum CodingKeys: String, CodingKey, CaseIterable { case code }

        init(from decoder: any Decoder) throws {
            code = try decoder.container(keyedBy: CodingKeys.self).required(.code)
        }
    }

    /// `POST /api/auth/live-token`; the body may be empty (purpose `events`).
    struct LiveTokenRequest: Decodable {
        let purpose: LiveTokenPurpose

        enum CodingKeys: String, CodingKey, CaseIterable { case purpose }

        init(from decoder: any Decoder) throws {
            let name: String = try decoder.container(keyedBy: CodingKeys.self).optional(.purpose) ?? "events"
            guard let purpose = LiveTokenPurpose.allCases.first(where: { $0.rawValue == "moat." + name }) else {
                throw AuthError(.invalidInput, "purpose must be one of: events, websocket")
            }
            // A chat token needs the `write` scope and is bound to a session: only `POST /api/chat/live-token`.
            guard purpose != .chat else {
                throw AuthError(.invalidInput, "a chat token comes from POST /api/chat/live-token")
            }
            self.purpose = purpose
        }
    }

    /// `POST /api/tokens` (`TokenRequest`).
    struct TokenRequest: Decodable {
        let scope: TokenScope
        /// Seconds; nil for the default, `.infinity` for never.
        let lifetime: TimeInterval?
        let name: String

        enum CodingKeys: String, CodingKey, CaseIterable { case name, scope, expires }

        init(from decoder: any Decoder) throws {
            let body = try decoder.container(keyedBy: CodingKeys.self)
            guard let scope = TokenScope(rawValue: try body.optional(.scope) ?? "read") else {
                throw AuthError(.invalidInput, "scope must be read, write or admin")
            }
            self.scope = scope
            lifetime = try TokenLifetime.parse(try body.optional(.expires))
            name = try body.required(.name)
        }
    }
}

/// Reads a request body strictly: at most 64 KiB, one JSON object, fields of the declared types.
enum RequestBody {
    static func read<Body: Decodable>(
        _ type: Body.Type, _ request: Request, _ context: GatewayRequestContext, allowEmpty: Bool = false
    ) async throws -> Body {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: 64 * 1024)
        } catch {
            throw AuthError(.invalidInput, "the request body is larger than 64 KiB")
        }
        return try decode(type, Data(buffer.readableBytesView), allowEmpty: allowEmpty)
    }

    /// `data` as `Body`: a field's own error (``AuthError``) as it was thrown, anything else that is not a
    /// JSON object as one message.
    static func decode<Body: Decodable>(_ type: Body.Type, _ data: Data, allowEmpty: Bool = false) throws -> Body {
        let text = data.isEmpty && allowEmpty ? Data("{}".utf8) : data
        do {
            return try JSONDecoder().decode(type, from: text)
        } catch is DecodingError {
            throw AuthError(.invalidInput, "the request body must be a JSON object (Content-Type: application/json)")
        }
    }
}

extension KeyedDecodingContainer {
    /// A field that may be absent; present, it must be of its type (`null` included in the refusal).
    func optional<Value: RequestField>(_ key: Key) throws -> Value? {
        guard contains(key) else { return nil }
        do {
            return try decode(Value.self, forKey: key)
        } catch is DecodingError {
            throw AuthError(.invalidInput, "the field \"\(key.stringValue)\" must be \(Value.expected)")
        }
    }

    func required<Value: RequestField>(_ key: Key) throws -> Value {
        guard let value: Value = try optional(key) else {
            throw AuthError(.invalidInput, "the field \"\(key.stringValue)\" is required")
        }
        return value
    }

    /// A password field, moved into secret memory (the JSON text itself cannot be wiped).
    func secret(_ key: Key) throws -> SecretField {
        let text: String = try required(key)
        return SecretField(bytes: Array(text.utf8))
    }
}

/// A type a request field may have, with the words its type error uses.
protocol RequestField: Decodable {
    static var expected: String { get }
}

extension String: RequestField {
    static var expected: String { "a string" }
}

extension Bool: RequestField {
    static var expected: String { "true or false" }
}

/// Bytes of a secret field on their way into ``SecretBytes``.
struct SecretField {
    var bytes: [UInt8]

    mutating func take() -> SecretBytes { SecretBytes(wiping: &bytes) }
}
