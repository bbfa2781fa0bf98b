public import Foundation

/// A private (0700) directory under the system temp dir, removed with everything in it on deinit.
///
/// Tests use a real directory with real modes, because the permission checks under test are about
/// the real file system.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init(_ label: String = "moat-test") {
        var template = Array((NSTemporaryDirectory() + "/\(label)-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(cString: template.map { $0 })
            .replacingOccurrences(of: "//", with: "/")
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// The path of `name` inside this directory.
    public func file(_ name: String) -> String { path + "/" + name }

    /// Writes `text` to `name` with `mode`, returning the path.
    @discardableResult
    public func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
        let target = file(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: target))
        _ = Foundation.chmod(target, mode_t(mode))
        return target
    }

    /// Changes the permission bits of `path`.
    public static func chmod(_ path: String, _ mode: Int) {
        _ = Foundation.chmod(path, mode_t(mode))
    }
}
