import Foundation
import MoatCore
import Testing

@Suite struct BoundedFileTests {
    @Test("a file is read whole; a missing one and one over the limit are refused with the reason")
    func readsAndRefuses() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("moat-bounded-\(getpid())").path
        let content = [UInt8](repeating: 0x61, count: 200_000)
        try Data(content).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try BoundedFile.read(path, limit: 200_000) == content)
        #expect(throws: BoundedFile.Failure.tooLarge) { try BoundedFile.read(path, limit: 199_999) }
        #expect(throws: BoundedFile.Failure.open(ENOENT)) { try BoundedFile.read(path + ".missing", limit: 10) }
        #expect(BoundedFile.describe(ENOENT) == "No such file or directory")
    }

    @Test("a procfs file (size 0, a page per read) is read to its end")
    func procfs() throws {
        let bytes = try BoundedFile.read("/proc/self/smaps", limit: 64 << 20)
        #expect(bytes.count > 16384)
        #expect(String(decoding: bytes.suffix(200), as: UTF8.self).contains("VmFlags"))
    }
}
