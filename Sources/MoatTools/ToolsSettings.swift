/// The owner's settings for the built-in tools (`tools:` in `config.yaml`, Docs/Tools.md).
///
/// Every size has a cap and every run a time limit; the defaults are the ones documented in
/// `config.yaml.example`. Private network exceptions are not here: `web_fetch` and `http_request` use
/// the SSRF settings of `policy.ssrf`, the one list of them.
public struct ToolsSettings: Sendable, Equatable {
    /// `tools.workspace`: the workspace root; nil means `workspace/` in the state directory.
    public var workspace: String?
    /// `tools.output_bytes`: the largest result any tool gives back (a marker shows where it was cut).
    public var outputBytes = 64 << 10
    /// `tools.files.read_bytes`: the most `read_file` reads of one file.
    public var readBytes = 256 << 10
    /// `tools.files.write_bytes`: the largest content `write_file` accepts.
    public var writeBytes = 1 << 20
    /// `tools.files.list_entries`: the most entries `list_files` lists.
    public var listEntries = 1000
    /// `tools.shell.network`: whether a command may use the network. Off; the sandbox has no network
    /// mode yet, so `true` is refused when the file is read rather than ignored.
    public var shellNetwork = false
    /// `tools.shell.time_limit_seconds`: the wall time of one command, after which everything it started
    /// is killed.
    public var shellTimeLimit: Duration = .seconds(30)
    /// `tools.web.max_bytes`: the largest response body `web_fetch` and `http_request` accept.
    public var fetchBytes = 2 << 20
    /// `tools.web.time_limit_seconds`: the time for one request, from connecting to the last byte.
    public var fetchTimeLimit: Duration = .seconds(30)

    public init() {}
}
