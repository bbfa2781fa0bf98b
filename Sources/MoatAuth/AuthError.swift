/// An error from owner authentication. Messages never hold a password, code, token or session id.
public struct AuthError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure this is; the HTTP layer maps each to a status.
    public enum Code: String, Sendable, Hashable {
        /// Input is malformed (password too short, bad TOTP format, unknown scope). HTTP 400.
        case invalidInput
        /// No owner exists yet: run setup first. HTTP 503.
        case setupRequired
        /// Setup already happened; the setup link is spent. HTTP 409.
        case alreadySetUp
        /// Credentials, token, session or code did not verify. HTTP 401.
        case unauthorized
        /// Authenticated, but the scope does not allow this. HTTP 403.
        case forbidden
        /// Too many failures or too many password checks at once. HTTP 429 with `Retry-After`.
        case rateLimited
        /// A row that grants power failed its MAC: the database was tampered with. HTTP 500, audited.
        case tampered
        /// No such token (prefix) or code. HTTP 404.
        case notFound
        /// Reading or writing `moat.db` or the vault failed. HTTP 500.
        case storage
    }

    public let code: Code
    public let message: String
    /// For ``Code/rateLimited``: seconds until a retry can succeed.
    public let retryAfter: Int?

    public init(_ code: Code, _ message: String, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { message }
}
