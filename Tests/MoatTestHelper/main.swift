// moat-test-helper: small programs the tests run as child processes, to be killed at random points
// (crash safety). Not installed; built only because test targets depend on it.
//
//   moat-test-helper audit-append-loop DB_PATH SIGNING_KEY_HEX
//       appends audit entries forever, printing "ack N" after each append returned (i.e. committed)
//   moat-test-helper hold-connections PORT COUNT REQUEST
//       opens up to COUNT connections to 127.0.0.1:PORT (60 s in all), prints "opened N", writes REQUEST on
//       each without reading answers, prints "sent", then waits up to 120 s for the server to close them
//       and prints "open N" (those still open) before it exits
//   moat-test-helper launch-with-descriptors COUNT
//       opens COUNT descriptors, then starts /bin/true 1,200 times with ChildProcess from 4 threads and
//       prints "launched N" (1200 when all started); with Foundation's Process instead, this segfaults at
//       about 1,350 descriptors in this toolchain (see ChildProcess.swift)

import Crypto
import Foundation
import MoatAudit
import MoatCore
import MoatStore
import MoatTestSupport
import Synchronization

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    let usage =
        "usage: moat-test-helper audit-append-loop DB KEYHEX | hold-connections PORT COUNT REQUEST | "
        + "launch-with-descriptors COUNT\n"
    FileHandle.standardError.write(Data(usage.utf8))
    exit(64)
}

func unhex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

switch arguments[1] {
case "audit-append-loop":
    // The audit log's own tables only, as MoatAuditTests (AuditFixture.migrations) opens the file.
    let database = try MoatDatabase(path: arguments[2], migrations: [StoreSchema.meta, AuditSchema.log])
    let keys = AuditKeys(
        fingerprintKey: SymmetricKey(data: unhex(arguments[3])),
        signingKey: try Curve25519.Signing.PrivateKey(rawRepresentation: unhex(arguments[3])),
        scrub: { $0 }
    )
    let log = AuditLog(
        database: database, keys: keys, origin: try AuditLog.origin(for: database), checkpointInterval: 50)
    var index = 0
    while true {
        let entry = try await log.append(AuditEvent(actor: "system", action: "test.crash", target: "\(index)"))
        // Unbuffered: an "ack" the parent reads was written only after the append returned.
        FileHandle.standardOutput.write(Data("ack \(entry.sequence)\n".utf8))
        index += 1
    }
case "hold-connections":
    guard arguments.count == 5, let port = Int(arguments[2]), let count = Int(arguments[3]) else {
        FileHandle.standardError.write(Data("usage: moat-test-helper hold-connections PORT COUNT REQUEST\n".utf8))
        exit(64)
    }
    try HeldConnections.allowDescriptors(count + 64)
    let held = HeldConnections(count: count, port: port, within: 60)
    FileHandle.standardOutput.write(Data("opened \(held.opened)\n".utf8))
    held.sendOnEach(arguments[4])
    FileHandle.standardOutput.write(Data("sent\n".utf8))
    let stillOpen = await held.waitUntilClosedByServer(within: 120)
    FileHandle.standardOutput.write(Data("open \(stillOpen)\n".utf8))
    held.closeAll()
case "launch-with-descriptors":
    guard arguments.count == 3, let count = Int(arguments[2]) else {
        FileHandle.standardError.write(Data("usage: moat-test-helper launch-with-descriptors COUNT\n".utf8))
        exit(64)
    }
    try HeldConnections.allowDescriptors(count + 64)
    let opened = (0..<count).map { _ in open("/dev/null", O_RDONLY) }
    guard !opened.contains(-1) else {
        FileHandle.standardError.write(Data("cannot open \(count) descriptors\n".utf8))
        exit(70)
    }
    // Thread heaps with buffers of many sizes, as in a test run; each thread launches 300 children.
    let launched = Mutex(0)
    let threads = (0..<4).map { seed in
        Thread {
            for round in 0..<300 {
                let buffers = (0..<20).map {
                    [UInt8](repeating: 1, count: 500 + ($0 * 997 + round * 31 + seed) % 40_000)
                }
                guard let child = try? ChildProcess("/bin/true", []) else { continue }
                child.waitUntilExit()
                launched.withLock { $0 += buffers.isEmpty ? 0 : 1 }
            }
        }
    }
    for thread in threads { thread.start() }
    while threads.contains(where: { !$0.isFinished }) { usleep(10_000) }
    FileHandle.standardOutput.write(Data("launched \(launched.withLock { $0 })\n".utf8))
default:
    FileHandle.standardError.write(Data("moat-test-helper: unknown program \(arguments[1])\n".utf8))
    exit(64)
}
