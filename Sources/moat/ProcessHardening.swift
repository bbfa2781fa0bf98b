import CMoatProcess
import Foundation
import MoatCore

/// The process-wide protections `moat` applies before any command parses its arguments, so every
/// command that unlocks the vault (the server and the CLI alike) runs with them.
enum ProcessHardening {
    /// Keeps the process's memory (the vault's keys, the audit signing seed, the auth MAC key) out of
    /// core dumps and away from other processes of the same user: non-dumpable (`PR_SET_DUMPABLE 0`,
    /// which also refuses `ptrace`, `gcore` and `/proc/PID/mem` to anyone without `CAP_SYS_PTRACE`) and
    /// a core-size limit of zero, inherited by every child.
    static func protectMemory() throws(CommandFailure) {
        guard moat_process_set_nondumpable() == 0 else {
            throw CommandFailure("cannot make the process non-dumpable (prctl: errno \(errno)); nothing was read")
        }
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        guard setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &none) == 0 else {
            throw CommandFailure("cannot turn core dumps off (setrlimit: errno \(errno)); nothing was read")
        }
    }

    /// Raises the soft limit on open files to the hard limit, for `moat serve`: the connection cap is
    /// derived from what this returns (the soft limit in force afterwards).
    static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }
}
