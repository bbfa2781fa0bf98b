import MoatConfig
import MoatCore
import MoatTools
import Testing

@Suite struct ToolsConfigurationTests {
    @Test("tools keys parse into the tools settings")
    func parses() throws {
        let config = try ConfigurationLoader.parse(
            """
            tools:
              workspace: /srv/moat-workspace
              output_bytes: 4096
              files:
                read_bytes: 2048
                write_bytes: 8192
                list_entries: 50
              shell:
                network: false
                time_limit_seconds: 5
              web:
                max_bytes: 1048576
                time_limit_seconds: 7
            """,
            file: "config.yaml"
        )
        var expected = ToolsSettings()
        expected.workspace = "/srv/moat-workspace"
        expected.outputBytes = 4096
        expected.readBytes = 2048
        expected.writeBytes = 8192
        expected.listEntries = 50
        expected.shellTimeLimit = .seconds(5)
        expected.fetchBytes = 1 << 20
        expected.fetchTimeLimit = .seconds(7)
        #expect(config.tools == expected)
    }

    @Test(
        "bad tools values are refused with the file, line, key and what is allowed",
        arguments: [
            ("tools:\n  workspace: relative/dir", "config.yaml:2: tools.workspace: must be an absolute path"),
            ("tools:\n  shell:\n    network: true", "config.yaml:3: tools.shell.network: true is not supported yet"),
            ("tools:\n  shell:\n    network: maybe", "config.yaml:3: tools.shell.network: must be true or false"),
            ("tools:\n  output_bytes: 10", "config.yaml:2: tools.output_bytes: 10 is out of range"),
            ("tools:\n  files:\n    read_byte: 10", "config.yaml:3: tools.files.read_byte: unknown key (did you mean"),
            ("tools:\n  web:\n    time_limit_seconds: 0", "config.yaml:3: tools.web.time_limit_seconds: 0 is out of"),
            ("tools:\n  shell:\n    time_limit_seconds: soon", "must be a whole number (a whole number from 1 to 3600"),
            ("tools:\n  browser: {}", "config.yaml:2: tools.browser: unknown key"),
        ]
    )
    func refused(yaml: String, expected: String) {
        do {
            _ = try ConfigurationLoader.parse(yaml, file: "config.yaml")
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }
}
