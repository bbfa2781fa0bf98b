import Foundation
import MoatCore
import Synchronization
import Testing

/// A Python virtual environment for tests that drive a real client (the `openai` package), kept in a
/// cache outside the repository (`$XDG_CACHE_HOME/moat-test-venvs/NAME`, else `~/.cache/…`) and
/// created with `pip install` when absent.
public struct PythonVenv: Sendable {
    public let directory: String
    public var python: String { directory + "/bin/python" }

    /// Why a venv could not be made ready.
    public enum Unavailable: Error, CustomStringConvertible {
        /// PyPI could not be reached: the test that needs the venv is skipped, saying so.
        case offline(String)
        /// Anything else (no venv module, a failed install): a real failure.
        case failed(String)

        public var description: String {
            switch self {
            case .offline(let text), .failed(let text): text
            }
        }
    }

    /// The venv `name` with `packages` installed, made now when missing (once; later runs reuse it).
    ///
    /// The `pip install` of a fresh machine (a minute or more for Synapse) runs on a thread of its own, and
    /// tests asking for the same venv at once share one preparation: two installs into one directory would
    /// remove each other's half-built venv, and a wait in the caller would hold a cooperative thread.
    public static func prepared(_ name: String, packages: [String]) async throws(Unavailable) -> PythonVenv {
        let task = preparations.withLock { running in
            if let task = running[name] { return task }
            let task = Task.detached { () async -> Result<PythonVenv, Unavailable> in
                let result = try? await offCooperativePool {
                    Result { () throws(Unavailable) in try preparedNow(name, packages: packages) }
                }
                return result ?? .failure(.failed("the preparation of venv \(name) could not be started"))
            }
            running[name] = task
            return task
        }
        return try await task.value.get()
    }

    /// The venv for a test: prepared as ``prepared(_:packages:)``, or the test ends as skipped, saying
    /// why, when PyPI cannot be reached; any other failure fails it.
    public static func forTest(_ name: String, packages: [String]) async throws -> PythonVenv {
        let outcome: Result<PythonVenv, Unavailable>
        do {
            outcome = .success(try await prepared(name, packages: packages))
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success(let venv): return venv
        case .failure(.offline(let reason)): try Test.cancel("skipped: \(reason)")
        case .failure(let problem): throw problem
        }
    }

    /// Preparations of this process, by venv name (each made at most once).
    private static let preparations = Mutex<[String: Task<Result<PythonVenv, Unavailable>, Never>]>([:])

    private static func preparedNow(_ name: String, packages: [String]) throws(Unavailable) -> PythonVenv {
        let environment = ProcessInfo.processInfo.environment
        let cache = environment["XDG_CACHE_HOME"] ?? ((environment["HOME"] ?? "/root") + "/.cache")
        let directory = cache + "/moat-test-venvs/" + name
        let marker = directory + "/.moat-ready"
        if FileManager.default.fileExists(atPath: marker) { return PythonVenv(directory: directory) }
        // Built in place (a venv's scripts hold its absolute path); the marker is written last, so a
        // half-built one left by an interrupted run is removed and built again.
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.createDirectory(atPath: cache + "/moat-test-venvs", withIntermediateDirectories: true)
        let interpreters = ["/usr/bin/python3", "/usr/local/bin/python3"].filter {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard interpreters.contains(where: { (try? HostCommand.run($0, ["-m", "venv", directory]))?.status == 0 })
        else {
            throw .failed("no python3 here can create a venv: install python3 and python3-venv (./install.sh --deps)")
        }
        let install: (status: Int32, output: String)
        do {
            install = try HostCommand.run(
                directory + "/bin/python",
                ["-m", "pip", "install", "--disable-pip-version-check", "--timeout", "30", "--retries", "1"] + packages)
        } catch {
            throw .failed("pip could not be started in \(directory)")
        }
        guard install.status == 0 else {
            let networkSigns = [
                "NewConnectionError", "Max retries", "Temporary failure in name resolution", "Network is unreachable",
                "ConnectTimeout", "ReadTimeout", "No matching distribution",
            ]
            if networkSigns.contains(where: install.output.contains) {
                throw .offline(
                    "PyPI is unreachable, so \(packages.joined(separator: " ")) cannot be installed into \(directory)")
            }
            throw .failed("pip install \(packages.joined(separator: " ")) failed:\n\(install.output.suffix(2000))")
        }
        guard FileManager.default.createFile(atPath: marker, contents: Data()) else {
            throw .failed("cannot write \(marker)")
        }
        return PythonVenv(directory: directory)
    }

    /// Runs `python SCRIPT ARGUMENTS` on a thread of its own (never blocking the cooperative pool, where
    /// an in-process server may be waiting); returns the exit status, stdout and stderr.
    public func run(_ script: String, _ arguments: [String]) async throws -> (status: Int32, out: String, err: String) {
        let python = python
        return try await offCooperativePool {
            let stdout = Pipe()
            let stderr = Pipe()
            let process = try ChildProcess(
                python, [script] + arguments, standardOutput: .pipe(stdout), standardError: .pipe(stderr))
            let errors = Mutex<Data>(Data())
            let reader = Thread { errors.withLock { $0 = stderr.fileHandleForReading.readAll() } }
            reader.start()
            let out = stdout.fileHandleForReading.readAll()
            process.waitUntilExit()
            // This thread is already off the pool; the stderr reader ends with the process's stderr.
            while !reader.isFinished { usleep(1000) }
            return (
                process.terminationStatus, String(decoding: out, as: UTF8.self),
                String(decoding: errors.withLock { $0 }, as: UTF8.self)
            )
        }
    }
}
