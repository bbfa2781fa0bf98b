public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension FileHandle {
    /// Hands each piece read to `body` until end of file. Unlike `availableData` and
    /// `readDataToEndOfFile()`, a read interrupted by a signal (`EINTR`: the test process catches some,
    /// e.g. for child processes) is tried again instead of ending the process with a fatal error.
    public func readPieces(_ body: (Data) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fileDescriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                body(Data(buffer[0..<count]))
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }

    /// Everything until end of file, read as ``readPieces(_:)`` does.
    public func readAll() -> Data {
        var data = Data()
        readPieces { data.append($0) }
        return data
    }
}
