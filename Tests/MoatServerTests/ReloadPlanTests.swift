import Foundation
import MoatAgent
import MoatApp
import MoatAuth
import MoatChannels
import MoatConfig
import MoatPolicy
import Testing

/// What a SIGHUP puts in force and what it leaves for a restart: a pure comparison.
@Suite struct ReloadPlanTests {
    @Test(
        "providers and agent limits are applied; the bind, TLS and policy wait for a restart and keep their old values"
    )
    func liveAndRestart() throws {
        let current = try ConfigurationLoader.parse("agent:\n  message_bytes: 1000\n", file: "config.yaml")
        let loaded = try ConfigurationLoader.parse(
            """
            gateway:
              port: 18790
              allowed_hosts: [studio.lan]
            agent:
              message_bytes: 10
              max_rounds_per_turn: 3
            policy:
              approval_expiry_minutes: 5
            """, file: "config.yaml")
        let plan = ReloadPlan(current: current, loaded: loaded)
        #expect(plan.applied == ["agent"])
        #expect(plan.needsRestart == ["gateway.port", "gateway.allowed_hosts", "policy"])
        #expect(plan.inForce.agent.messageBytes == 10)
        #expect(plan.inForce.agent.maxRoundsPerTurn == 3)
        #expect(plan.inForce.port == current.port)
        #expect(plan.inForce.allowedHosts.isEmpty)
        #expect(plan.inForce.policy == current.policy)
    }

    @Test("an unchanged file applies nothing and needs nothing")
    func unchanged() throws {
        let config = try ConfigurationLoader.parse("agent:\n  message_bytes: 1000\n", file: "config.yaml")
        let plan = ReloadPlan(current: config, loaded: config)
        #expect(plan.applied.isEmpty && plan.needsRestart.isEmpty)
        #expect(plan.inForce == config)
    }

    static let telegram = """
          telegram:
            token_secret: TELEGRAM_BOT_TOKEN
            base_url: http://127.0.0.1:9/
        """
    static let matrix = """
          matrix:
            homeserver_url: http://127.0.0.1:8008
            user_id: "@moat:example.org"
            access_token_secret: MATRIX_TOKEN
        """

    @Test(
        "auth limits, pairing limits and channels are applied live: a channel added starts, one removed stops, one changed (a new secret name) restarts"
    )
    func channelsAndLimitsLive() throws {
        let current = try ConfigurationLoader.parse("channels:\n" + Self.matrix, file: "config.yaml")
        let loaded = try ConfigurationLoader.parse(
            """
            gateway:
              auth:
                limits:
                  password_failures: 2
            channels:
            \(Self.telegram)
              pairing:
                code_lifetime: 120
            """, file: "config.yaml")
        let plan = ReloadPlan(current: current, loaded: loaded)
        #expect(plan.applied == ["gateway.auth.limits", "channels.pairing", "channels.telegram", "channels.matrix"])
        #expect(plan.needsRestart.isEmpty)
        #expect(plan.channels == [.init(channel: "telegram", action: .start), .init(channel: "matrix", action: .stop)])
        #expect(plan.inForce.auth.passwordFailuresPerAccount == 2)
        #expect(plan.inForce.channels.pairing.codeLifetime == 120)
        #expect(plan.inForce == loaded)

        let renamed = try ConfigurationLoader.parse(
            "channels:\n" + Self.matrix.replacingOccurrences(of: "MATRIX_TOKEN", with: "MATRIX_BOT_TOKEN"),
            file: "config.yaml")
        let restart = ReloadPlan(current: current, loaded: renamed)
        #expect(restart.channels == [.init(channel: "matrix", action: .restart)])
        #expect(restart.applied == ["channels.matrix"])
        #expect(restart.inForce.channels.matrix == renamed.channels.matrix)
    }

    @Test(
        "a webhook without a callback is added and removed live; one with a callback on either side keeps its old form and is named as needing a restart"
    )
    func webhooks() throws {
        let current = try ConfigurationLoader.parse(
            """
            channels:
              webhooks:
                old: {key_secret: OLD_KEY}
                cb: {key_secret: CB_KEY, callback_url: "http://127.0.0.1:9/cb", callback_key_secret: CB_OUT}
            """, file: "config.yaml")
        let loaded = try ConfigurationLoader.parse(
            """
            channels:
              webhooks:
                sms: {key_secret: SMS_KEY}
                late: {key_secret: LATE_KEY, callback_url: "http://127.0.0.1:9/late", callback_key_secret: LATE_OUT}
            """, file: "config.yaml")
        let plan = ReloadPlan(current: current, loaded: loaded)
        #expect(plan.applied == ["channels.webhooks"])
        #expect(plan.needsRestart == ["channels.webhooks.cb (callback)", "channels.webhooks.late (callback)"])
        #expect(plan.inForce.channels.webhooks.keys.sorted() == ["cb", "sms"])
        #expect(plan.inForce.channels.webhooks["cb"] == current.channels.webhooks["cb"])
        #expect(plan.channels.isEmpty)
    }

    @Test(
        "a Telegram channel in webhook mode, before or after, is named as needing a restart and keeps its old settings")
    func telegramWebhookModeWaits() throws {
        let polling = try ConfigurationLoader.parse("channels:\n" + Self.telegram, file: "config.yaml")
        let webhook = try ConfigurationLoader.parse(
            "channels:\n" + Self.telegram
                + """

                    mode: webhook
                    webhook_url: https://moat.example.test/hooks/telegram/updates
                    webhook_secret: TELEGRAM_WEBHOOK_SECRET
                """, file: "config.yaml")
        for (from, to) in [(polling, webhook), (webhook, polling)] {
            let plan = ReloadPlan(current: from, loaded: to)
            #expect(plan.needsRestart == ["channels.telegram (webhook mode)"])
            #expect(plan.channels.isEmpty && plan.applied.isEmpty)
            #expect(plan.inForce.channels.telegram == from.channels.telegram)
        }
    }
}
