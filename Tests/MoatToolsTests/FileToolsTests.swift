import CMoatFiles
import Foundation
import MoatCore
import MoatNet
import MoatStore
import MoatTestSupport
import Synchronization
import Testing

@testable import MoatTools

#if canImport(Glibc)
    import Glibc
#endif

/// A state directory with its default workspace, and the three file tools over it.
struct FileFixture {
    let temp = TemporaryDirectory("moat-tools")
    let layout: StateLayout
    let workspace: Workspace
    let settings: ToolsSettings
    let context = ToolContext(principal: .owner, conversationID: "test")

    /// - Parameter beneath: false makes the file tools walk without trying openat2 first.
    init(settings: ToolsSettings = ToolsSettings(), beneath: Bool = true) throws {
        layout = StateLayout(configDirectory: temp.file("state"), stateDirectory: temp.file("state"))
        try layout.createDirectories()
        var workspace = try Workspace.open(configured: nil, layout: layout)
        workspace.resolveBeneath = beneath
        self.workspace = workspace
        self.settings = settings
        // Something outside the workspace that no call may ever return or change.
        try temp.write("outside.txt", "OUTSIDE-SECRET")
        mkdir(temp.file("outside-dir"), 0o700)
        try temp.write("outside-dir/secret.txt", "OUTSIDE-SECRET")
    }

    var root: String { workspace.root }
    func path(_ name: String) -> String { root + "/" + name }

    func call(_ tool: some Tool, _ arguments: String) async throws(ToolError) -> ToolOutput {
        try await tool.run(try tool.prepare(arguments), context: context)
    }

    func read(_ path: String) async throws(ToolError) -> String {
        try await call(ReadFileTool(workspace: workspace, settings: settings), Self.json(["path": path])).text
    }

    func write(_ path: String, _ content: String) async throws(ToolError) -> String {
        try await call(
            WriteFileTool(workspace: workspace, settings: settings), Self.json(["path": path, "content": content])
        ).text
    }

    func list(_ path: String) async throws(ToolError) -> String {
        try await call(ListFilesTool(workspace: workspace, settings: settings), Self.json(["path": path])).text
    }

    static func json(_ object: [String: String]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}

@Suite struct FileToolsTests {
    @Test(
        "normal use: write a file (0600, through missing directories), read it back, list it, replace it",
        arguments: [true, false])
    func normalUse(beneath: Bool) async throws {
        let fixture = try FileFixture(beneath: beneath)
        #expect(FileModes.mode(of: fixture.root) == 0o700)
        #expect(try await fixture.write("notes/todo.txt", "buy milk\n") == "wrote 9 bytes to notes/todo.txt")
        #expect(FileModes.mode(of: fixture.path("notes/todo.txt")) == 0o600)
        #expect(try await fixture.read("notes/todo.txt") == "buy milk\n")
        #expect(try await fixture.read("/workspace/notes/./todo.txt") == "buy milk\n")
        #expect(try await fixture.read(fixture.path("notes/todo.txt")) == "buy milk\n")
        #expect(try await fixture.write("notes/todo.txt", "done") == "wrote 4 bytes to notes/todo.txt")
        #expect(try await fixture.read("notes/todo.txt") == "done")
        #expect(try await fixture.list("") == "dir notes/")
        #expect(try await fixture.list("notes") == "file todo.txt (4 bytes)")
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.path("notes")) == ["todo.txt"])
    }

    @Test(
        "'..' and absolute paths outside the workspace are refused before anything is opened", arguments: [true, false])
    func lexicalEscapes(beneath: Bool) async throws {
        let fixture = try FileFixture(beneath: beneath)
        for path in [
            "../outside.txt", "notes/../../outside.txt", "..", "/etc/passwd", fixture.temp.file("outside.txt"),
            "/workspace/../outside.txt", fixture.root + "x/a",
        ] {
            let error = await asyncToolError { _ = try await fixture.read(path) }
            #expect(error?.code == .refused, "\(path): \(String(describing: error))")
            let written = await asyncToolError { _ = try await fixture.write(path, "pwned") }
            #expect(written?.code == .refused, "\(path)")
        }
        #expect(try String(contentsOfFile: fixture.temp.file("outside.txt"), encoding: .utf8) == "OUTSIDE-SECRET")
    }

    @Test(
        "a symlink is never followed: not to /etc/passwd, not as a directory component, not when written",
        arguments: [true, false])
    func symlinks(beneath: Bool) async throws {
        let fixture = try FileFixture(beneath: beneath)
        symlink("/etc/passwd", fixture.path("passwd"))
        symlink(fixture.temp.file("outside-dir"), fixture.path("linked"))
        symlink(fixture.temp.file("outside.txt"), fixture.path("out.txt"))
        for path in ["passwd", "linked/secret.txt", "out.txt"] {
            let error = await asyncToolError { _ = try await fixture.read(path) }
            #expect(error?.code == .refused, "\(path): \(String(describing: error))")
            #expect(error?.message.contains("symbolic link") == true, "\(path): \(String(describing: error))")
        }
        let throughLink = await asyncToolError { _ = try await fixture.write("linked/new.txt", "pwned") }
        #expect(throughLink?.code == .refused)
        #expect(!FileManager.default.fileExists(atPath: fixture.temp.file("outside-dir/new.txt")))
        let overLink = await asyncToolError { _ = try await fixture.write("out.txt", "pwned") }
        #expect(overLink?.code == .refused)
        let listed = await asyncToolError { _ = try await fixture.list("linked") }
        #expect(listed?.code == .refused)
        #expect(try String(contentsOfFile: fixture.temp.file("outside.txt"), encoding: .utf8) == "OUTSIDE-SECRET")
        // The listing shows links as links.
        #expect(try await fixture.list(".").contains("link passwd (not followed)"))
    }

    @Test("a hard link to a file outside is neither read nor overwritten", arguments: [true, false])
    func hardLinks(beneath: Bool) async throws {
        let fixture = try FileFixture(beneath: beneath)
        #expect(link(fixture.temp.file("outside.txt"), fixture.path("hard.txt")) == 0)
        let read = await asyncToolError { _ = try await fixture.read("hard.txt") }
        #expect(read?.code == .refused)
        #expect(read?.message.contains("hard links") == true)
        let written = await asyncToolError { _ = try await fixture.write("hard.txt", "pwned") }
        #expect(written?.code == .refused)
        #expect(try String(contentsOfFile: fixture.temp.file("outside.txt"), encoding: .utf8) == "OUTSIDE-SECRET")
    }

    @Test("a FIFO or a socket in the workspace is refused at once, never waited on", arguments: [true, false])
    func specialFiles(beneath: Bool) async throws {
        let fixture = try FileFixture(beneath: beneath)
        #expect(mkfifo(fixture.path("pipe"), 0o600) == 0)
        let error = await asyncToolError { _ = try await fixture.read("pipe") }
        #expect(error?.code == .refused)
        #expect(error?.message.contains("FIFO") == true)
        let written = await asyncToolError { _ = try await fixture.write("pipe", "x") }
        #expect(written?.code == .refused)
        let directory = await asyncToolError { _ = try await fixture.read("") }
        #expect(directory?.code == .invalidArguments)
    }

    @Test("reads, writes and listings are capped, with a marker where a result was cut")
    func caps() async throws {
        var settings = ToolsSettings()
        settings.readBytes = 1024
        settings.writeBytes = 2048
        settings.listEntries = 10
        let fixture = try FileFixture(settings: settings)
        let big = String(repeating: "a", count: 2000)
        _ = try await fixture.write("big.txt", big)
        let read = try await fixture.read("big.txt")
        #expect(
            read.hasPrefix(String(repeating: "a", count: 1024) + "\n[cut: the file was cut here after 1024 of 2000"))
        let tooBig = await asyncToolError { _ = try await fixture.write("big.txt", big + big) }
        #expect(tooBig?.code == .invalidArguments && tooBig?.message.contains("at most 2048 bytes") == true)
        for index in 0..<15 { _ = try await fixture.write(String(format: "f%02d", index), "x") }
        let listing = try await fixture.list("")
        #expect(listing.split(separator: "\n").count == 11)
        #expect(listing.hasSuffix("[cut: 6 more of 16 entries not listed]"))
    }

    @Test("openat2 beneath the root (the fast path) refuses '..', a symlink and an absolute path on this kernel")
    func openat2Shim() throws {
        let fixture = try FileFixture()
        let root = open(fixture.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(root) }
        try Data("x".utf8).write(to: URL(fileURLWithPath: fixture.path("plain.txt")))
        symlink(fixture.temp.file("outside.txt"), fixture.path("out.txt"))
        let plain = moat_open_beneath(root, "plain.txt", O_RDONLY | O_CLOEXEC, 0)
        #expect(plain >= 0)
        close(plain)
        for (path, expected) in [
            ("../outside.txt", EXDEV), ("out.txt", ELOOP), (fixture.temp.file("outside.txt"), EXDEV),
        ] {
            let fd = moat_open_beneath(root, path, O_RDONLY | O_CLOEXEC, 0)
            #expect(fd == -1 && errno == expected, "\(path)")
        }
    }

    @Test("the built-in registry offers the contract's tools, each in its domain, in a stable order")
    func builtinRegistry() throws {
        let fixture = try FileFixture()
        let registry = try ToolRegistry.builtin(
            workspace: fixture.workspace, settings: fixture.settings, ssrf: SSRFSettings(), vault: nil,
            messageSender: RecordingSender(contacts: []))
        let domains = registry.descriptors.map { "\($0.name):\($0.domain)" }
        #expect(
            domains == [
                "http_request:integrations", "list_files:files", "read_file:files", "send_message:messaging",
                "shell:shell", "web_fetch:web", "write_file:files",
            ])
        #expect(registry.descriptors.allSatisfy { $0.parameters.contains(#""additionalProperties":false"#) })
        #expect(try registry.prepare(tool: "list_files", arguments: #"{"path":""}"#).destination == ".")
    }

    @Test("a workspace root replaced after it was opened is refused, not followed to the new directory")
    func replacedRoot() async throws {
        let fixture = try FileFixture()
        _ = try await fixture.write("kept.txt", "old root")
        #expect(rename(fixture.root, fixture.root + "-moved") == 0)
        symlink(fixture.temp.file("outside-dir"), fixture.root)
        let error = await asyncToolError { _ = try await fixture.read("secret.txt") }
        #expect(error?.code == .failed || error?.code == .refused)
        unlink(fixture.root)
        mkdir(fixture.root, 0o700)
        try Data("OUTSIDE-SECRET".utf8).write(to: URL(fileURLWithPath: fixture.path("kept.txt")))
        let replaced = await asyncToolError { _ = try await fixture.read("kept.txt") }
        #expect(replaced?.code == .refused && replaced?.message.contains("was replaced") == true)
    }

    @Test("the workspace root is never the state or configuration directory, nor a parent of either")
    func rootRules() throws {
        let temp = TemporaryDirectory("moat-tools-root")
        let layout = StateLayout(configDirectory: temp.file("config"), stateDirectory: temp.file("home/state"))
        try layout.createDirectories()
        mkdir(temp.file("elsewhere"), 0o700)
        mkdir(temp.file("home/state/backups"), 0o700)
        for (root, expected) in [
            (temp.file("home/state"), "is Moat's state directory"), (temp.file("home"), "is Moat's state directory"),
            ("/", "or a parent of it"), (temp.file("config"), "configuration directory"),
            (temp.file("home/state/backups"), "inside Moat's state"), ("relative/path", "absolute path"),
            (temp.file("missing"), "does not exist"),
        ] {
            let error = toolError { _ = try Workspace(root: root, layout: layout) }
            #expect(error?.message.contains(expected) == true, "\(root): \(String(describing: error))")
        }
        symlink(temp.file("home/state"), temp.file("alias"))
        let alias = toolError { _ = try Workspace(root: temp.file("alias"), layout: layout) }
        #expect(alias?.code == .refused, "a symlink to the state directory is the state directory")
        #expect(try Workspace(root: temp.file("elsewhere"), layout: layout).root.hasSuffix("/elsewhere"))
        let defaulted = try Workspace.open(configured: nil, layout: layout)
        #expect(defaulted.root.hasSuffix("/home/state/workspace"))
        #expect(FileModes.mode(of: layout.workspaceDirectory) == 0o700)
    }

    @Test(
        "a symlink swapped in by a racing thread never makes a read return content from outside",
        arguments: [true, false])
    func racingSymlinks(beneath: Bool) async throws {
        let fixture = try FileFixture(beneath: beneath)
        let root = fixture.root
        mkdir(root + "/d", 0o700)
        try Data("inside".utf8).write(to: URL(fileURLWithPath: root + "/d/secret.txt"))
        try Data("inside".utf8).write(to: URL(fileURLWithPath: root + "/f"))
        try fixture.temp.write("outside-dir/OUTSIDE-marker", "x")
        let outsideDirectory = fixture.temp.file("outside-dir")
        let outsideFile = fixture.temp.file("outside.txt")
        let stop = StopFlag()
        // The attacker: swaps a directory component and the last component for symlinks, as fast as it can.
        let attacker = Thread {
            while !stop.value.load(ordering: .relaxed) {
                rename(root + "/d", root + "/d-saved")
                symlink(outsideDirectory, root + "/d")
                symlink(outsideFile, root + "/f-link")
                rename(root + "/f-link", root + "/f")
                unlink(root + "/d")
                rename(root + "/d-saved", root + "/d")
                let fd = open(root + "/f-new", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
                _ = write(fd, "inside", 6)
                close(fd)
                rename(root + "/f-new", root + "/f")
            }
        }
        attacker.start()
        defer { stop.value.store(true, ordering: .relaxed) }
        var inside = 0
        var refused = 0
        for _ in 0..<1500 {
            for path in ["d/secret.txt", "f"] {
                do {
                    let text = try await fixture.read(path)
                    #expect(text == "inside")
                    inside += 1
                } catch {
                    #expect(!error.message.contains("OUTSIDE"))
                    refused += 1
                }
            }
            let listing = (try? await fixture.list("d")) ?? ""
            #expect(!listing.contains("OUTSIDE"))
        }
        // Writes through the same names while the swaps go on (after the reads: a write may create a
        // missing directory, which stalls the attacker's renames).
        for index in 0..<500 {
            _ = try? await fixture.write(index % 2 == 0 ? "d/w.txt" : "f", "written")
        }
        stop.value.store(true, ordering: .relaxed)
        #expect(!FileManager.default.fileExists(atPath: outsideDirectory + "/w.txt"))
        #expect(inside + refused == 3000)
        #expect(try String(contentsOfFile: outsideFile, encoding: .utf8) == "OUTSIDE-SECRET")
    }
}

/// Tells the racing thread to stop.
final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}
