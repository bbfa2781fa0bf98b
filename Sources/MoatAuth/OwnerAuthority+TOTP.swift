import Crypto
public import Foundation
import GRDB
import MoatAudit
public import MoatCore
import MoatStore
import MoatVault

/// A stored recovery code: only its keyed hash. `used_at` is left out of the MAC (marking a code used
/// can only take power away).
struct RecoveryCodeRow: AuthenticatedRow {
    static let macTable = "auth_recovery_codes"
    let codeHash: String
    let createdAt: Int64

    var macFields: [String] { [codeHash, String(createdAt)] }
}

/// A TOTP enrolment in progress: what the owner scans, shown once.
public struct TOTPEnrolment: Sendable {
    /// The `otpauth://totp/…` URI.
    public let uri: String
    /// The secret in base32, for typing into an app by hand.
    public let secretBase32: String
    /// The URI as an SVG QR code (for the browser).
    public let qrSVG: String
    /// The URI as a QR code in text blocks (for the terminal).
    public let qrText: String
}

extension OwnerAuthority {
    /// Recovery codes issued at enrolment.
    public static let recoveryCodeCount = 10
    static let recoveryAlphabet = Array("abcdefghjkmnpqrstuvwxyz23456789".utf8)

    /// Starts (or restarts) TOTP enrolment: a new secret, kept in the vault as pending until
    /// ``confirmTOTP(code:client:)`` proves the owner's app has it. Enrolment does not change login
    /// until it is confirmed.
    ///
    /// - Parameter currentPassword: required from the web (changing a factor needs the password again,
    ///   so a stolen session cannot swap the owner's authenticator); nil from the terminal, where the
    ///   vault is already open.
    public func beginTOTPEnrolment(
        currentPassword: SecretBytes?, client: ClientInfo
    ) async throws(AuthError) -> TOTPEnrolment {
        let owner = try await requireOwner()
        if let currentPassword {
            try await confirmPassword(currentPassword, owner: owner, action: "auth.totp.enrol.begin", client: client)
        }
        var secret = TOTP.generateSecret()
        let uri = TOTP.provisioningURI(secret: secret, account: owner.username)
        let base32 = Base32.encode(secret)
        let qr = try QRCode(encoding: uri)
        let pending = SecretBytes(wiping: &secret)
        do {
            try await audited("auth.totp.enrol.begin", client: client) {
                try self.vault.add(
                    Self.pendingTOTPSecretName, value: pending, policy: try SecretPolicy(tools: [], hosts: []),
                    replace: true)
            }
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not store the TOTP secret in the vault: \(error)")
        }
        return TOTPEnrolment(uri: uri, secretBase32: base32, qrSVG: qr.svg(), qrText: qr.terminalText())
    }

    /// Confirms enrolment with a code from the app: TOTP is on from now on, and the 10 single-use
    /// recovery codes are returned (shown once; only their hashes are stored).
    public func confirmTOTP(code: String, client: ClientInfo) async throws(AuthError) -> [String] {
        let owner = try await requireOwner()
        let account = owner.username.lowercased()
        let pending: SecretBytes?
        do {
            pending = try vault.value(named: Self.pendingTOTPSecretName)
        } catch {
            throw AuthError(.storage, "could not read the vault: \(error.description)")
        }
        guard let pending else {
            throw AuthError(.invalidInput, "no TOTP enrolment is in progress; start one first")
        }
        // Counted as a failure in the transaction that checks the limit (codes tried at once cannot pass
        // it together), taken back when the code matches.
        let provisional = try await admitAttempt(
            within: [FailureLimit(kind: .totp, key: account, limit: settings.totpFailures)],
            counting: [(.totp, account)])
        let totp = pending.withUnsafeBytes { TOTP(secret: Array($0)) }
        guard let step = totp.match(code, at: now(), window: 1, after: 0) else {
            await record(
                "auth.totp.failure", actor: "owner", outcome: "failure", client: client,
                metadata: ["during": .string("enrolment")])
            throw AuthError(.unauthorized, "that code does not match; check the app's clock and try the next code")
        }
        try await withdrawFailures(provisional)
        let codes = (0..<Self.recoveryCodeCount).map { _ in
            let raw = AuthRandom.string(12, alphabet: Self.recoveryAlphabet)
            return String(raw.prefix(4)) + "-" + String(raw.dropFirst(4).prefix(4)) + "-" + String(raw.suffix(4))
        }
        let now = nowMillis()
        let hashes = codes.map { recoveryHash($0) }
        do {
            try await audited("auth.totp.enrol", client: client, metadata: ["recovery_codes": .int(Int64(codes.count))])
            {
                // The vault's secret makes login ask for a code, so it goes in first and comes out again
                // (the earlier one put back) if the database cannot record the enrolment.
                let previous = try self.vault.value(named: Self.totpSecretName)
                let policy = try SecretPolicy(tools: [], hosts: [])
                try self.vault.add(Self.totpSecretName, value: pending, policy: policy, replace: true)
                do {
                    try await self.storeEnrolment(step: step, hashes: hashes, now: now)
                } catch {
                    if let previous {
                        try? self.vault.add(Self.totpSecretName, value: previous, policy: policy, replace: true)
                    } else {
                        try? self.vault.remove(Self.totpSecretName)
                    }
                    throw error
                }
                try? self.vault.remove(Self.pendingTOTPSecretName)
            }
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not turn TOTP on: \(error)")
        }
        try await clearFailures([(.totp, account)])
        return codes
    }

    /// The database half of confirming enrolment: TOTP on, the step used, the new recovery codes.
    private nonisolated func storeEnrolment(step: Int64, hashes: [String], now: Int64) async throws {
        try await database.pool.write { db in
            try self.updateOwner(in: db) { owner in
                owner.totpEnabled = true
                owner.totpLastStep = max(owner.totpLastStep, step)
                owner.updatedAt = now
            }
            try db.execute(sql: "DELETE FROM auth_recovery_codes")
            for hash in hashes {
                try db.execute(
                    sql: "INSERT INTO auth_recovery_codes (code_hash, created_at, mac) VALUES (?, ?, ?)",
                    arguments: [hash, now, self.rows.mac(RecoveryCodeRow(codeHash: hash, createdAt: now))])
            }
        }
    }

    /// Whether a login needs the second factor: the owner row says so, or the vault holds an enrolled
    /// TOTP secret. The vault decides as well because a database-only attacker could put back the
    /// owner row from before enrolment (same token version, a genuine MAC) to turn two-factor login off.
    func totpRequired(_ owner: OwnerRecord) throws(AuthError) -> Bool {
        if owner.totpEnabled { return true }
        do {
            return try vault.value(named: Self.totpSecretName) != nil
        } catch {
            throw AuthError(.storage, "could not read the vault: \(error.description)")
        }
    }

    /// Checks the second factor at login: a 6-digit TOTP code (not used before: replay is refused) or
    /// an unused recovery code. Failures are limited per account and audited. A code's time step is
    /// claimed in the same transaction that checks it was not used (``claimTOTPStep(_:owner:)``), so a
    /// code works once even when logins race.
    func checkSecondFactor(_ code: String?, owner: OwnerRecord, client: ClientInfo) async throws(AuthError) {
        let account = owner.username.lowercased()
        // Counted as a failure in the transaction that checks the limit, so codes tried at once cannot
        // pass it together; an accepted code clears the account's failures.
        do {
            _ = try await admitAttempt(
                within: [FailureLimit(kind: .totp, key: account, limit: settings.totpFailures)],
                counting: [(.totp, account)])
        } catch  where error.code == .rateLimited {
            if shouldRecordRefusal("totp " + client.limitKey) {
                await record("auth.totp.failure", actor: "owner", outcome: "rate-limited", client: client)
            }
            throw error
        }
        let text = (code ?? "").filter { !$0.isWhitespace }
        if text.count == TOTP.digits, text.allSatisfy(\.isASCII), let step = try await matchTOTP(text, owner: owner),
            try await claimTOTPStep(step, owner: owner)
        {
            // Accepted, and the step is used up.
        } else if text.count == 14, try await useRecoveryCode(text.lowercased(), client: client) {
            // Accepted; useRecoveryCode audited it.
        } else {
            await record(
                "auth.totp.failure", actor: "owner", outcome: "failure", client: client,
                metadata: ["during": .string("login")])
            throw Self.invalidCredentials
        }
        try await clearFailures([(.totp, account)])
    }

    /// Marks `step` used, in one transaction with the check that no later or equal step was used:
    /// another process sharing `moat.db` (or a concurrent login) cannot use the same code too. False
    /// when the code was already used, or the owner's credentials changed meanwhile.
    private func claimTOTPStep(_ step: Int64, owner: OwnerRecord) async throws(AuthError) -> Bool {
        let now = nowMillis()
        let unusable = AuthError(.unauthorized, "this code was used already")
        return try await write { db -> Bool in
            do {
                try self.updateOwner(in: db, checked: owner, refusal: unusable) { owner in
                    guard step > owner.totpLastStep else { throw unusable }
                    owner.totpLastStep = step
                    owner.updatedAt = now
                }
                return true
            } catch let error as AuthError where error == unusable {
                return false
            }
        }
    }

    private func matchTOTP(_ code: String, owner: OwnerRecord) async throws(AuthError) -> Int64? {
        let secret: SecretBytes?
        do {
            secret = try vault.value(named: Self.totpSecretName)
        } catch {
            throw AuthError(.storage, "could not read the vault: \(error.description)")
        }
        guard let secret else {
            throw AuthError(
                .storage, "TOTP is on but its secret is missing from the vault; reset with `moat owner setup --reset`")
        }
        let totp = secret.withUnsafeBytes { TOTP(secret: Array($0)) }
        return totp.match(code, at: now(), window: 1, after: owner.totpLastStep)
    }

    private func useRecoveryCode(_ code: String, client: ClientInfo) async throws(AuthError) -> Bool {
        let now = nowMillis()
        // The keyed form first; codes issued before it (plain SHA-256) keep working until used.
        let candidates = [recoveryHash(code), Self.legacyRecoveryHash(code)]
        let found = try await read { db -> (hash: String, created: Int64, used: Int64?, mac: String)? in
            for hash in candidates {
                if let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM auth_recovery_codes WHERE code_hash = ?", arguments: [hash])
                {
                    return (hash, row["created_at"], row["used_at"], row["mac"])
                }
            }
            return nil
        }
        guard let (hash, created, usedAt, mac) = found, usedAt == nil else { return false }
        guard rows.verify(mac, of: RecoveryCodeRow(codeHash: hash, createdAt: created)) else {
            await reportTamper(table: "auth_recovery_codes", key: String(hash.prefix(12)))
            return false
        }
        let used = try await write { db -> Bool in
            try db.execute(
                sql: "UPDATE auth_recovery_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL",
                arguments: [now, hash])
            return db.changesCount == 1
        }
        if used {
            let left = try await read { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM auth_recovery_codes WHERE used_at IS NULL") ?? 0
            }
            await record(
                "auth.recovery_code.use", actor: "owner", outcome: "success", client: client,
                metadata: ["remaining": .int(Int64(left))])
        }
        return used
    }

    /// How recovery codes were stored before they were keyed (still accepted for codes issued then).
    static func legacyRecoveryHash(_ code: String) -> String {
        AuthRandom.sha256Hex("moat-recovery-v1\n" + code)
    }

    /// A recovery code as stored: an HMAC keyed from the vault, so a copy of `moat.db` alone does not
    /// allow testing guesses offline (the codes have about 59 bits; a plain hash would be a start).
    nonisolated func recoveryHash(_ code: String) -> String {
        let mac = recoveryKey.withSymmetricKey { HMAC<SHA256>.authenticationCode(for: Data(code.utf8), using: $0) }
        return AuthRandom.hex(mac)
    }
}
