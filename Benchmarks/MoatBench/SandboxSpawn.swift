import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Spawn-to-exit medians of `/bin/true` through `moat-sandbox`, through bubblewrap (when installed) and
/// plain, in milliseconds, measured as bench/sandbox-spawn.sh does with hyperfine: pinned to CPU 0,
/// the three commands measured round-robin so a load change touches each alike.
struct SandboxFigures {
    var launcher: Double
    var bwrap: Double?
    var plain: Double
    var runs: Int
}

func sandboxBenchmark(launcher: String, work: String, runs: Int, warmup: Int) throws -> SandboxFigures {
    let spec = work + "/true.json"
    try #"{"argv":["/bin/true"]}"#.write(toFile: spec, atomically: true, encoding: .utf8)
    // A sandbox that fails fast would look fast: check that it really ran the command.
    let check = Process()
    check.executableURL = URL(fileURLWithPath: launcher)
    check.arguments = ["--spec", spec]
    let output = Pipe()
    check.standardOutput = output
    try check.run()
    let result = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    check.waitUntilExit()
    guard check.terminationStatus == 0, result.contains(#""status":"exited""#), result.contains(#""exit_code":0"#)
    else { throw BenchFailure("moat-sandbox did not run /bin/true: \(result)") }

    var commands: [(name: String, argv: [String])] = [("moat-sandbox", [launcher, "--spec", spec])]
    let bwrap = executable("bwrap")
    if let bwrap {
        commands.append(("bwrap", [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"]))
    }
    commands.append(("plain", ["/bin/true"]))
    let names = commands.map(\.name)
    let argvs = commands.map(\.argv)
    // On a thread of its own, pinned to CPU 0 (the children inherit the affinity); the result comes back
    // through the mutex once the thread is done.
    let outcome = Mutex<Result<[[Double]], BenchFailure>?>(nil)
    let finished = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        pinToFirstCPU()
        let clock = ContinuousClock()
        var times = [[Double]](repeating: [], count: argvs.count)
        var result: Result<[[Double]], BenchFailure> = .success([])
        rounds: for round in 0..<(warmup + runs) {
            for (index, argv) in argvs.enumerated() {
                let begin = clock.now
                let status = spawnAndWait(argv)
                let elapsed = clock.now - begin
                guard status == 0 else {
                    result = .failure(BenchFailure("sandbox spawn: \(names[index]) exited with \(status)"))
                    break rounds
                }
                if round >= warmup { times[index].append(seconds(elapsed) * 1000) }
            }
        }
        if case .success = result { result = .success(times) }
        outcome.withLock { $0 = result }
        finished.signal()
    }
    finished.wait()
    let times = try outcome.withLock { $0 }!.get()
    let medians = times.map(median)
    let figures = SandboxFigures(
        launcher: medians[0], bwrap: bwrap == nil ? nil : medians[1], plain: medians[medians.count - 1], runs: runs)
    print(
        String(
            format:
                "sandbox: /bin/true spawn-to-exit, pinned, median of %d: moat-sandbox %.2f ms, bwrap %@, plain %.2f ms",
            runs, figures.launcher, figures.bwrap.map { String(format: "%.2f ms", $0) } ?? "not installed",
            figures.plain))
    return figures
}

/// posix_spawn with stdin, stdout and stderr on /dev/null, then waitpid; the exit status (128 + N for a
/// signal N).
private func spawnAndWait(_ argv: [String]) -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let arguments = argv.map { strdup($0) } + [nil]
    defer { for argument in arguments { free(argument) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, argv[0], &actions, nil, arguments, environ) == 0 else { return 127 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}

/// Pins the calling thread to CPU 0. glibc declares sched_setaffinity only under _GNU_SOURCE, which the
/// Swift importer does not see, so the symbol is looked up at run time.
private func pinToFirstCPU() {
    typealias SetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_setaffinity") else { return }
    var mask = [UInt64](repeating: 0, count: 16)  // a cpu_set_t: 1024 bits
    mask[0] = 1
    _ = mask.withUnsafeBytes { unsafeBitCast(symbol, to: SetAffinity.self)(0, $0.count, $0.baseAddress!) }
}
