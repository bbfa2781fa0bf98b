import Foundation
import HTTPTypes
import MoatAuth
import MoatCore
import MoatHTTP
import Testing

@testable import MoatConsole

/// The owner API's Codable bodies: each request type refuses a bad body with the exact message the
/// strict JSON reader gave, and each response type writes the field names of its Docs/openapi.yaml schema.
@Suite("Owner API bodies")
struct OwnerAPIBodyTests {
    /// One bad body: the request type that reads it, the body and the whole message a client sees.
    struct BadBody: Sendable, CustomTestStringConvertible {
        let type: String
        let body: String
        let message: String
        var allowEmpty = false
        var testDescription: String { "\(type) \(body)" }

        func decode() throws {
            let data = Data(body.utf8)
            switch type {
            case "SetupRequest": _ = try RequestBody.decode(OwnerAPI.SetupRequest.self, data)
            case "LoginRequest": _ = try RequestBody.decode(OwnerAPI.LoginRequest.self, data)
            case "PasswordChange": _ = try RequestBody.decode(OwnerAPI.PasswordChange.self, data)
            case "RevokeAllRequest": _ = try RequestBody.decode(OwnerAPI.RevokeAllRequest.self, data, allowEmpty: true)
            case "TOTPEnrolRequest": _ = try RequestBody.decode(OwnerAPI.TOTPEnrolRequest.self, data)
            case "TOTPConfirmRequest": _ = try RequestBody.decode(OwnerAPI.TOTPConfirmRequest.self, data)
            case "LiveTokenRequest": _ = try RequestBody.decode(OwnerAPI.LiveTokenRequest.self, data, allowEmpty: true)
            case "TokenRequest": _ = try RequestBody.decode(OwnerAPI.TokenRequest.self, data)
            case "ChatTokenRequest": _ = try RequestBody.decode(OwnerAPI.ChatTokenRequest.self, data, allowEmpty: true)
            default: Issue.record("no request type \(type)")
            }
        }
    }

    static let notObject = "the request body must be a JSON object (Content-Type: application/json)"

    static let badBodies: [BadBody] = [
        BadBody(type: "SetupRequest", body: #"{"token":"t"}"#, message: #"the field "password" is required"#),
        BadBody(
            type: "SetupRequest", body: #"{"password":5,"token":"t"}"#,
            message: #"the field "password" must be a string"#),
        BadBody(
            type: "SetupRequest", body: #"{"password":"p","token":null}"#,
            message: #"the field "token" must be a string"#),
        BadBody(
            type: "SetupRequest", body: #"{"password":"p","token":"t","username":null}"#,
            message: #"the field "username" must be a string"#),
        BadBody(type: "SetupRequest", body: "", message: notObject),
        BadBody(type: "LoginRequest", body: #"{"password":"p"}"#, message: #"the field "username" is required"#),
        BadBody(
            type: "LoginRequest", body: #"{"username":["o"],"password":"p"}"#,
            message: #"the field "username" must be a string"#),
        BadBody(
            type: "LoginRequest", body: #"{"username":"o","password":"p","code":123456}"#,
            message: #"the field "code" must be a string"#),
        BadBody(
            type: "LoginRequest", body: #"{"username":"o","password":null}"#,
            message: #"the field "password" must be a string"#),
        BadBody(type: "LoginRequest", body: "username=o&password=p", message: notObject),
        BadBody(
            type: "PasswordChange", body: #"{"current_password":"a"}"#,
            message: #"the field "new_password" is required"#),
        BadBody(
            type: "PasswordChange", body: #"{"current_password":null,"new_password":"b"}"#,
            message: #"the field "current_password" must be a string"#),
        BadBody(type: "PasswordChange", body: #"[{"current_password":"a"}]"#, message: notObject),
        BadBody(
            type: "RevokeAllRequest", body: #"{"api_tokens":null}"#,
            message: #"the field "api_tokens" must be true or false"#),
        BadBody(
            type: "RevokeAllRequest", body: #"{"api_tokens":"true"}"#,
            message: #"the field "api_tokens" must be true or false"#),
        // JSONSerialization on Linux read 1 as true; the spec says boolean, and so does the reader now.
        BadBody(
            type: "RevokeAllRequest", body: #"{"api_tokens":1}"#,
            message: #"the field "api_tokens" must be true or false"#),
        BadBody(type: "RevokeAllRequest", body: "true", message: notObject),
        BadBody(type: "TOTPEnrolRequest", body: "{}", message: #"the field "password" is required"#),
        BadBody(
            type: "TOTPEnrolRequest", body: #"{"password":false}"#, message: #"the field "password" must be a string"#),
        BadBody(type: "TOTPConfirmRequest", body: #"{"recovery":"x"}"#, message: #"the field "code" is required"#),
        BadBody(type: "TOTPConfirmRequest", body: #"{"code":123456}"#, message: #"the field "code" must be a string"#),
        BadBody(type: "TOTPConfirmRequest", body: #"{"code":null}"#, message: #"the field "code" must be a string"#),
        BadBody(
            type: "LiveTokenRequest", body: #"{"purpose":null}"#, message: #"the field "purpose" must be a string"#),
        BadBody(
            type: "LiveTokenRequest", body: #"{"purpose":"shell"}"#,
            message: "purpose must be one of: events, websocket"),
        BadBody(type: "LiveTokenRequest", body: #"{"purpose":"#, message: notObject),
        BadBody(
            type: "LiveTokenRequest", body: #"{"purpose":"chat"}"#,
            message: "a chat token comes from POST /api/chat/live-token"),
        BadBody(
            type: "ChatTokenRequest", body: #"{"lifetime":"60"}"#,
            message: #"the field "lifetime" must be a whole number"#),
        BadBody(
            type: "ChatTokenRequest", body: #"{"lifetime":null}"#,
            message: #"the field "lifetime" must be a whole number"#),
        BadBody(
            type: "ChatTokenRequest", body: #"{"lifetime":301}"#,
            message: #"the field "lifetime" must be from 1 to 300 seconds"#),
        BadBody(
            type: "ChatTokenRequest", body: #"{"lifetime":0}"#,
            message: #"the field "lifetime" must be from 1 to 300 seconds"#),
        BadBody(type: "TokenRequest", body: #"{"scope":"read"}"#, message: #"the field "name" is required"#),
        BadBody(type: "TokenRequest", body: #"{"name":7}"#, message: #"the field "name" must be a string"#),
        BadBody(
            type: "TokenRequest", body: #"{"name":"ci","scope":null}"#, message: #"the field "scope" must be a string"#),
        BadBody(
            type: "TokenRequest", body: #"{"name":"ci","scope":"root"}"#, message: "scope must be read, write or admin"),
        BadBody(
            type: "TokenRequest", body: #"{"name":"ci","expires":null}"#,
            message: #"the field "expires" must be a string"#),
        BadBody(
            type: "TokenRequest", body: #"{"name":"ci","expires":"soon"}"#,
            message: "expires must look like 30d, 12h or 90m (at most 10 years), or never"),
        // The order of the checks is the handler's old order: the scope's value before a missing name.
        BadBody(type: "TokenRequest", body: #"{"scope":"root"}"#, message: "scope must be read, write or admin"),
    ]

    @Test(
        "a bad request body (wrong type, null, missing field, not an object) is a 400 with its exact message",
        arguments: badBodies)
    func badBody(_ bad: BadBody) throws {
        let error = try #require(throws: AuthError.self) { try bad.decode() }
        #expect(error.code == .invalidInput)
        #expect(error.message == bad.message)
        #expect(APIError.status(error.kind) == .badRequest)
    }

    @Test(
        "good bodies decode to their fields; unknown fields are ignored; an empty body is allowed only where documented"
    )
    func goodBodies() throws {
        var login = try RequestBody.decode(
            OwnerAPI.LoginRequest.self, Data(#"{"username":"owner","password":"pw","code":"123456","x":[1,{}]}"#.utf8))
        #expect(login.username == "owner" && login.code == "123456")
        #expect(login.password.take().withUnsafeBytes { Array($0) } == Array("pw".utf8))
        let token = try RequestBody.decode(OwnerAPI.TokenRequest.self, Data(#"{"name":"ci"}"#.utf8))
        #expect(token.name == "ci" && token.scope == .read && token.lifetime == nil)
        let never = try RequestBody.decode(
            OwnerAPI.TokenRequest.self, Data(#"{"name":"ci","scope":"admin","expires":"never"}"#.utf8))
        #expect(never.scope == .admin && never.lifetime == .infinity)
        #expect(try RequestBody.decode(OwnerAPI.RevokeAllRequest.self, Data(), allowEmpty: true).apiTokens == false)
        #expect(
            try RequestBody.decode(OwnerAPI.RevokeAllRequest.self, Data(#"{"api_tokens":true}"#.utf8)).apiTokens == true
        )
        #expect(try RequestBody.decode(OwnerAPI.LiveTokenRequest.self, Data(), allowEmpty: true).purpose == .events)
        #expect(
            try RequestBody.decode(OwnerAPI.LiveTokenRequest.self, Data(#"{"purpose":"websocket"}"#.utf8)).purpose
                == .websocket)
        let empty = try #require(throws: AuthError.self) {
            try RequestBody.decode(OwnerAPI.TOTPConfirmRequest.self, Data())
        }
        #expect(empty.message == Self.notObject)
    }

    @Test("a created token's body is the dictionary writer's bytes (every key, null times, sorted), `/` unescaped")
    func createdTokenBytes() throws {
        let view = try JSONDecoder().decode(
            TokenView.self,
            from: Data(
                #"{"prefix":"abcdefgh","name":"ci/deploy","scope":"read","created_at":"2026-12-06T10:00:00.000Z","active":true,"expires_at":"2027-03-06T10:00:00.000Z"}"#
                    .utf8))
        let encoded = APIError.jsonData(OwnerAPI.CreatedToken(view: view, token: "moat_abcdefgh_secret"))
        var object = view.jsonObject
        object["token"] = "moat_abcdefgh_secret"
        let old = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        // The one difference: JSONSerialization wrote `\/`; the answers now write `/` (the same JSON string).
        let oldText = String(decoding: old, as: UTF8.self).replacingOccurrences(of: #"\/"#, with: "/")
        #expect(String(decoding: encoded, as: UTF8.self) == oldText)
        #expect(String(decoding: encoded, as: UTF8.self).contains(#""name":"ci/deploy""#))
        #expect(String(decoding: encoded, as: UTF8.self).contains(#""last_used_at":null"#))
    }

    @Test("setup without login (gateway.auth.mode: token) answers the two keys openapi.yaml's prose names")
    func setupDoneBytes() {
        let written = APIError.jsonData(OwnerAPI.SetupDone(next: "create an API token"))
        #expect(String(decoding: written, as: UTF8.self) == #"{"next":"create an API token","setup":"done"}"#)
    }
}
