/// A named starting point for a spec: what a command may see besides the system directories.
public struct SandboxProfile: Sendable, Equatable {
    fileprivate enum Kind: Equatable, Sendable {
        case standard
        case workspace(String)
    }
    fileprivate let kind: Kind

    /// The sandbox's defaults: system directories read-only, a private `/tmp`, nothing writable on the host.
    public static let `default` = SandboxProfile(kind: .standard)

    /// The default plus one writable host directory, mounted at ``workspaceMountPoint`` and used as the
    /// working directory.
    public static func workspace(_ directory: String) -> SandboxProfile {
        SandboxProfile(kind: .workspace(directory))
    }

    /// Where the workspace profile mounts its directory inside the sandbox.
    public static let workspaceMountPoint = "/workspace"

    /// The profile names the CLI and configuration accept.
    public static let names = ["default", "workspace"]

    /// The profile called `name`; `workspace` needs the directory.
    public static func named(_ name: String, workspace directory: String?) throws -> SandboxProfile {
        switch name {
        case "default":
            return .default
        case "workspace":
            guard let directory else {
                throw SandboxError(.invalidSpec, "the workspace profile needs a directory (--rw DIR)")
            }
            return .workspace(directory)
        default:
            throw SandboxError(
                .invalidSpec,
                "unknown sandbox profile; the profiles are: \(names.joined(separator: ", "))"
            )
        }
    }

    /// The profile's name.
    public var name: String {
        switch kind {
        case .standard: return "default"
        case .workspace: return "workspace"
        }
    }

    /// A spec that runs `arguments` under this profile, with the default limits and timeout.
    public func spec(_ arguments: [String]) -> SandboxSpec {
        var spec = SandboxSpec(arguments)
        if case .workspace(let directory) = kind {
            spec.writableBinds = [BindMount(directory, at: Self.workspaceMountPoint)]
            spec.workingDirectory = Self.workspaceMountPoint
        }
        return spec
    }
}
