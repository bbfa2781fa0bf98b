/// An error from Moat's on-disk state: its directories, file modes and the database.
///
/// `message` says what failed and how to fix it; it never holds a secret or bound SQL arguments.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is, for callers that branch on it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable {
            case unsafePermissions, notADatabase, foreignDatabase, foreignSchema, newerSchema, corrupt, io, homeUnknown
        }
        fileprivate let value: Value

        /// A directory or file is accessible to other users, owned by someone else, or is a symlink.
        public static let unsafePermissions = Code(value: .unsafePermissions)
        /// `moat.db` is not an SQLite database (or is encrypted with something Moat does not know).
        public static let notADatabase = Code(value: .notADatabase)
        /// `moat.db` is an SQLite database that belongs to another program.
        public static let foreignDatabase = Code(value: .foreignDatabase)
        /// `moat.db` holds schema objects (triggers, views, changed tables) Moat's migrations did not create.
        public static let foreignSchema = Code(value: .foreignSchema)
        /// `moat.db` was migrated by a newer Moat than this one.
        public static let newerSchema = Code(value: .newerSchema)
        /// `moat.db` is damaged.
        public static let corrupt = Code(value: .corrupt)
        /// A file-system call failed.
        public static let io = Code(value: .io)
        /// No home directory could be found to derive the XDG paths from.
        public static let homeUnknown = Code(value: .homeUnknown)

        public var description: String { "\(value)" }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
