/// Process exit codes Moat uses, following BSD `sysexits.h` where one fits.
public enum ExitStatus {
    /// Success.
    public static let ok: Int32 = 0
    /// A check failed (`moat doctor`) or a command could not do what was asked.
    public static let failure: Int32 = 1
    /// Command-line usage error.
    public static let usage: Int32 = 64
    /// The data Moat found on disk (database, vault) is not what it expected.
    public static let dataError: Int32 = 65
    /// An internal error.
    public static let software: Int32 = 70
    /// Configuration error: bad config file, unsafe bind, unsafe file modes (`EX_CONFIG`).
    public static let configuration: Int32 = 78
}
