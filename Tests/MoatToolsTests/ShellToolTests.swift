import Foundation
import MoatCore
import MoatSandbox
import MoatStore
import MoatTestSupport
import MoatTools
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A state directory holding a readable "vault" and the default workspace, with the shell tool over the
/// real launcher (built beside the test executable).
struct ShellFixture {
    static let stateSecret = "STATE-SECRET-4b1d"
    let temp = TemporaryDirectory("moat-tools-shell")
    let layout: StateLayout
    let workspace: Workspace
    let context = ToolContext(principal: .owner, conversationID: "test")

    init() throws {
        // The sandbox's host identity is uid 65534 when tests run as root: it must be able to reach the
        // workspace. The state file is readable by it too, so only the sandbox keeps it out.
        TemporaryDirectory.chmod(temp.path, 0o755)
        layout = StateLayout(configDirectory: temp.file("state"), stateDirectory: temp.file("state"))
        try layout.createDirectories()
        workspace = try Workspace.open(configured: nil, layout: layout)
        for path in [layout.stateDirectory, workspace.root] { Self.makeReachableBySandbox(path) }
        try temp.write("state/vault.moat", Self.stateSecret, mode: 0o644)
    }

    static func makeReachableBySandbox(_ path: String) {
        if geteuid() == 0 { _ = chown(path, 65534, 65534) }
        TemporaryDirectory.chmod(path, 0o700)
    }

    func tool(_ settings: ToolsSettings = ToolsSettings(), launcher: String? = nil) -> ShellTool {
        ShellTool(workspace: workspace, settings: settings, launcherPath: launcher ?? Sandbox.defaultLauncherPath())
    }

    func run(_ command: String, _ settings: ToolsSettings = ToolsSettings()) async throws(ToolError) -> ToolOutput {
        let tool = tool(settings)
        return try await tool.run(try tool.prepare(FileFixture.json(["command": command])), context: context)
    }
}

@Suite struct ShellToolTests {
    @Test("a command runs in the sandbox with the workspace as its working directory; its output is external")
    func runsInWorkspace() async throws {
        let fixture = try ShellFixture()
        let output = try await fixture.run("echo hello; pwd; echo made-in-sandbox > out.txt")
        #expect(output.text == "exit status 0\nstdout:\nhello\n/workspace\n")
        #expect(output.external)
        let written = try String(contentsOfFile: fixture.workspace.root + "/out.txt", encoding: .utf8)
        #expect(written == "made-in-sandbox\n")
        let failed = try await fixture.run("echo oops >&2; exit 3")
        #expect(failed.text == "exit status 3\nstderr:\noops\n")
    }

    @Test("the sandbox cannot read the state directory, by its path or from the workspace")
    func stateIsOutOfReach() async throws {
        let fixture = try ShellFixture()
        let state = fixture.layout.stateDirectory
        let output = try await fixture.run(
            "cat \(state)/vault.moat; ls -a \(state); cat /workspace/../vault.moat; ls -a /workspace/..; "
                + "find / -name vault.moat 2>/dev/null; true")
        #expect(!output.text.contains(ShellFixture.stateSecret))
        #expect(output.text.contains("No such file or directory"))
    }

    @Test("the sandbox has no network: the host's loopback server is not reached")
    func noNetwork() async throws {
        let fixture = try ShellFixture()
        let server = EchoServer()
        let port = try await server.start()
        defer { Task { await server.stop() } }
        let output = try await fixture.run("curl -sS --max-time 5 http://127.0.0.1:\(port)/from-sandbox")
        #expect(!output.text.hasPrefix("exit status 0"), "\(output.text)")
        #expect(server.requests.isEmpty)
    }

    @Test("output and time are capped, with a marker where the output was cut")
    func caps() async throws {
        let fixture = try ShellFixture()
        var settings = ToolsSettings()
        settings.outputBytes = 1024
        settings.shellTimeLimit = .seconds(1)
        let long = try await fixture.run("yes | head -c 5000", settings)
        #expect(long.truncated)
        #expect(long.text.hasSuffix("\n[cut: stdout was cut here after 256 bytes]"), "\(long.text)")
        #expect(long.text.utf8.count <= 1024)
        let slow = try await fixture.run("sleep 30", settings)
        #expect(slow.text.hasPrefix("the command was stopped after its time limit (1 s)"))
    }

    @Test("links and FIFOs a command plants in the workspace never lead the file tools outside, nor hang them")
    func plantedByCommand() async throws {
        let fixture = try ShellFixture()
        let state = fixture.layout.stateDirectory
        let planted = try await fixture.run(
            "ln -s \(state) state && ln -s \(state)/vault.moat vault && ln -s /etc etc && mkfifo pipe && echo ok")
        #expect(planted.text.hasPrefix("exit status 0"), "\(planted.text)")
        var settings = ToolsSettings()
        settings.outputBytes = 4096
        let read = ReadFileTool(workspace: fixture.workspace, settings: settings)
        let write = WriteFileTool(workspace: fixture.workspace, settings: settings)
        for path in ["state/vault.moat", "vault", "etc/passwd", "pipe"] {
            let error = await asyncToolError {
                _ = try await read.run(try read.prepare(FileFixture.json(["path": path])), context: fixture.context)
            }
            #expect(error?.code == .refused, "\(path): \(String(describing: error))")
            #expect(error?.message.contains(ShellFixture.stateSecret) != true)
        }
        for path in ["state/new", "etc/moat-was-here"] {
            let error = await asyncToolError {
                _ = try await write.run(
                    try write.prepare(FileFixture.json(["path": path, "content": "x"])), context: fixture.context)
            }
            #expect(error?.code == .refused, "\(path)")
        }
        #expect(!FileManager.default.fileExists(atPath: state + "/new"))
        #expect(!FileManager.default.fileExists(atPath: "/etc/moat-was-here"))
    }

    @Test("a sandbox that cannot be set up runs nothing: the command is refused, never run unsandboxed")
    func failsClosed() async throws {
        let fixture = try ShellFixture()
        let tool = fixture.tool(launcher: fixture.temp.file("no-such-launcher"))
        let call = try tool.prepare(FileFixture.json(["command": "touch /workspace/ran"]))
        let error = await asyncToolError { _ = try await tool.run(call, context: fixture.context) }
        #expect(error?.code == .failed)
        #expect(error?.message.contains("the command was not run") == true)
        #expect(!FileManager.default.fileExists(atPath: fixture.workspace.root + "/ran"))
        let empty = toolError { _ = try tool.prepare(#"{"command":"  "}"#) }
        #expect(empty?.code == .invalidArguments)
    }
}
