import Foundation
import MoatTestSupport
import Testing

/// The reason ``ChildProcess`` exists: a process with many descriptors open still starts children.
@Suite(.tags(.slow)) struct ChildProcessLaunchTests {
    @Test(
        "with 1,500 descriptors open, 1,200 children start from 4 threads and the process lives (Foundation's Process.run segfaults there in this toolchain)"
    )
    func manyDescriptors() async throws {
        // In a child of its own: 1,500 more descriptors here would crowd the other tests' servers.
        let helper = try WatchedProcess(MoatBinary.helperPath, ["launch-with-descriptors", "1500"])
        let finished = await helper.waitForLines(within: 300) { $0.contains { $0.hasPrefix("launched ") } }
        let (lines, stderr) = await helper.kill()
        #expect(finished, "\(lines) \(stderr)")
        #expect(lines.last == "launched 1200", "\(lines) \(stderr)")
    }
}
