public import Logging
public import MoatAgent

/// Tells the owner through the server's log (journald, `moat serve`'s stderr): the kind of notice, the
/// conversation and the approval to decide. The notice's line is printable and holds no message text or
/// secret (``OwnerNotice``); every notice is in the audit log as well. The dashboard's live view and the
/// owner's chat will be further notifiers.
public struct LoggingNotifier: OwnerNotifier {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func notify(_ notice: OwnerNotice) async {
        var metadata: Logger.Metadata = [
            "kind": "\(notice.kind.rawValue)", "conversation": "\(notice.conversationID)",
        ]
        if let approval = notice.approvalID { metadata["approval"] = "\(approval)" }
        logger.notice("\(notice.text)", metadata: metadata)
    }
}
