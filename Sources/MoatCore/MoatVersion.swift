/// The version of this Moat build, printed by `moat --version`.
///
/// It is deliberately never sent over HTTP: `/healthz` and error pages carry no version, so a scanner
/// on the network learns nothing it could match against a vulnerability list.
public enum MoatVersion {
    public static let current = "0.1.0"
}
