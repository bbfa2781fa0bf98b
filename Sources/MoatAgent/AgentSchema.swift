import GRDB
public import MoatStore

/// MoatAgent's tables in `moat.db`: conversations, their messages, the idempotency keys of inbound
/// messages, every tool call with the gateway's decision, and token usage per principal and day.
public enum AgentSchema {
    /// `2026-12-06 agent`.
    public static let conversations = SchemaMigration("2026-12-06 agent") { db in
        // Rows that an approval resumes carry `mac` (an HMAC keyed from the vault, `AgentKeyring`): the
        // conversation (whose principal a resumed turn runs as) and the tool call (which conversation it
        // continues, under which provider call id). Messages, usage and idempotency keys grant nothing.
        try db.execute(
            sql: """
                CREATE TABLE agent_conversations (
                  id TEXT PRIMARY KEY,
                  channel TEXT NOT NULL,
                  principal TEXT NOT NULL,
                  created_at INTEGER NOT NULL,
                  mac TEXT NOT NULL
                );
                CREATE TRIGGER agent_conversations_no_update BEFORE UPDATE ON agent_conversations
                  BEGIN SELECT RAISE(ABORT, 'conversations are append-only'); END;
                CREATE TABLE agent_messages (
                  id INTEGER PRIMARY KEY,
                  conversation TEXT NOT NULL REFERENCES agent_conversations(id),
                  turn TEXT NOT NULL,
                  role TEXT NOT NULL,
                  content TEXT NOT NULL,
                  tool_calls TEXT NOT NULL,
                  tool_call_id TEXT,
                  created_at INTEGER NOT NULL
                );
                CREATE INDEX agent_messages_conversation ON agent_messages(conversation, id);
                CREATE TABLE agent_inbound (
                  channel TEXT NOT NULL,
                  sender_id TEXT NOT NULL,
                  idempotency_key TEXT NOT NULL,
                  conversation TEXT NOT NULL,
                  turn TEXT NOT NULL,
                  received_at INTEGER NOT NULL,
                  PRIMARY KEY (channel, sender_id, idempotency_key)
                );
                CREATE TABLE agent_tool_calls (
                  id TEXT PRIMARY KEY,
                  conversation TEXT NOT NULL REFERENCES agent_conversations(id),
                  turn TEXT NOT NULL,
                  round INTEGER NOT NULL,
                  call_id TEXT NOT NULL,
                  tool TEXT NOT NULL,
                  domain TEXT NOT NULL,
                  arguments TEXT NOT NULL,
                  destination TEXT NOT NULL,
                  level INTEGER NOT NULL,
                  decision TEXT NOT NULL,
                  limited_by TEXT NOT NULL,
                  taint TEXT NOT NULL,
                  approval_id TEXT,
                  created_at INTEGER NOT NULL,
                  mac TEXT NOT NULL,
                  outcome TEXT NOT NULL,
                  result_bytes INTEGER,
                  finished_at INTEGER
                );
                CREATE INDEX agent_tool_calls_conversation ON agent_tool_calls(conversation, created_at);
                CREATE UNIQUE INDEX agent_tool_calls_approval ON agent_tool_calls(approval_id)
                  WHERE approval_id IS NOT NULL;
                CREATE TABLE agent_usage (
                  principal TEXT NOT NULL,
                  day TEXT NOT NULL,
                  input_tokens INTEGER NOT NULL,
                  output_tokens INTEGER NOT NULL,
                  PRIMARY KEY (principal, day)
                );
                """
        )
    }

    /// `2026-12-06 agent usage by provider`: token use per principal, UTC day and provider, with the
    /// number of model rounds (issue 16's usage ledger, `moat usage`). Rows of the first table are kept
    /// under the provider `""` (not recorded).
    public static let usageByProvider = SchemaMigration("2026-12-06 agent usage by provider") { db in
        try db.execute(
            sql: """
                CREATE TABLE agent_token_usage (
                  principal TEXT NOT NULL,
                  day TEXT NOT NULL,
                  provider TEXT NOT NULL,
                  input_tokens INTEGER NOT NULL,
                  output_tokens INTEGER NOT NULL,
                  rounds INTEGER NOT NULL,
                  PRIMARY KEY (principal, day, provider)
                );
                CREATE INDEX agent_token_usage_day ON agent_token_usage(day);
                INSERT INTO agent_token_usage (principal, day, provider, input_tokens, output_tokens, rounds)
                  SELECT principal, day, '', input_tokens, output_tokens, 0 FROM agent_usage;
                DROP TABLE agent_usage;
                """
        )
    }

    /// `2026-12-06 agent routes`: the provider the owner chose for a conversation (`moat chat --provider`),
    /// fixed when the conversation opens; and which providers' daily token limit the owner was told of,
    /// so the notice comes once per provider and UTC day. Neither grants anything: every round still
    /// checks the provider's `allowed_principals` in config.yaml, so a row written behind Moat's back
    /// can at most pick among providers the principal may use anyway.
    public static let routes = SchemaMigration("2026-12-06 agent routes") { db in
        try db.execute(
            sql: """
                CREATE TABLE agent_conversation_routes (
                  conversation TEXT PRIMARY KEY REFERENCES agent_conversations(id),
                  provider TEXT NOT NULL,
                  created_at INTEGER NOT NULL
                );
                CREATE TABLE agent_provider_notices (
                  provider TEXT NOT NULL,
                  day TEXT NOT NULL,
                  created_at INTEGER NOT NULL,
                  PRIMARY KEY (provider, day)
                );
                """
        )
    }
}
