public import Foundation

/// `work`'s result, computed on a thread of its own and awaited: for blocking or CPU-bound work (an Argon2
/// hash, waiting for a process) that must not hold one of the cooperative pool's threads (one per core),
/// where every other task of the process — a server's requests among them — runs.
public func onThreadOfItsOwn<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

/// ``onThreadOfItsOwn(_:)`` for work that cannot fail.
public func onThreadOfItsOwn<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: work()) }
    }
}
