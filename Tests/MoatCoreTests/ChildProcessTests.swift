import Foundation
import MoatCore
import MoatTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct ChildProcessTests {
    /// Runs `/bin/sh -c SCRIPT` to its end (a few milliseconds, waited for on a thread of its own) and
    /// returns it with what it wrote on stdout.
    static func shell(
        _ script: String, environment: [String: String]? = nil, directory: String? = nil
    ) async throws -> (ChildProcess, String) {
        let output = Pipe()
        let child = try ChildProcess(
            "/bin/sh", ["-c", script], environment: environment, directory: directory, standardOutput: .pipe(output))
        let text = await offCooperativePool {
            let data = output.fileHandleForReading.readAll()
            child.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        return (child, text)
    }

    @Test("exit codes and signals are reported as Foundation's Process reports them")
    func statuses() async throws {
        let (exited, _) = try await Self.shell("exit 7")
        #expect(exited.terminationStatus == 7 && !exited.terminatedBySignal && !exited.isRunning)
        let (killed, _) = try await Self.shell("kill -KILL $$")
        #expect(killed.terminationStatus == SIGKILL && killed.terminatedBySignal)
    }

    @Test("the environment, the working directory and the output pipe are the ones given")
    func environmentAndDirectory() async throws {
        let (child, text) = try await Self.shell(
            #"printf '%s|%s|%s' "$MOAT_CHILD_TEST" "$(pwd)" "${HOME-unset}""#,
            environment: ["MOAT_CHILD_TEST": "ünï value", "PATH": "/usr/bin:/bin"], directory: "/tmp")
        #expect(child.terminationStatus == 0)
        #expect(text == "ünï value|/tmp|unset")
    }

    @Test("no descriptor of this process reaches the child beyond its three streams, close-on-exec or not")
    func descriptorsClosed() async throws {
        // Opened without O_CLOEXEC, as Foundation's pipes and many libraries' descriptors are.
        let inheritable = open("/dev/null", O_RDONLY)
        #expect(inheritable > 2)
        defer { close(inheritable) }
        let (child, text) = try await Self.shell("ls /proc/$$/fd")
        #expect(child.terminationStatus == 0)
        let descriptors = text.split(separator: "\n").compactMap { Int32($0) }
        #expect(Set(descriptors).isSubset(of: [0, 1, 2, 3]), "\(descriptors)")  // 3: ls's own listing
        #expect(!descriptors.contains(inheritable) || inheritable == 3)
    }

    @Test("waiting from two threads at once, and asking isRunning meanwhile, all see the one exit")
    func concurrentWaits() async throws {
        let child = try ChildProcess("/bin/sh", ["-c", "sleep 0.2; exit 3"])
        #expect(child.isRunning)
        let statuses = await withTaskGroup(of: Int32.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    await offCooperativePool {
                        child.waitUntilExit()
                        return child.terminationStatus
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == [3, 3])
        #expect(!child.isRunning && child.terminationStatus == 3)
        // After the reap, a signal is not sent to a pid that may now be another process's.
        child.terminate()
    }

    @Test("a missing program is an error naming it, and nothing is started")
    func missingProgram() {
        for program in ["/nonexistent/moat-child", "moat-no-such-program"] {
            do {
                _ = try ChildProcess(program, [])
                Issue.record("\(program) was started")
            } catch {
                #expect(error.description.contains(program), "\(error)")
            }
        }
    }
}
