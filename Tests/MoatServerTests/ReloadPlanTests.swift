import MoatAgent
import MoatApp
import MoatConfig
import MoatPolicy
import Testing

/// What a SIGHUP puts in force and what it leaves for a restart: a pure comparison.
@Suite struct ReloadPlanTests {
    @Test(
        "providers and agent limits are applied; the bind, TLS, channels and policy wait for a restart and keep their old values"
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
}
