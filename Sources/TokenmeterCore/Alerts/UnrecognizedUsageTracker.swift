/// Usage blocks no row of the table reads (contract 1b): `unrecognized_usage` once per model per UTC day
/// (of the event time), at the first such request that day, naming the block's top-level keys, with the
/// day's request count so far and the caller that made it. Its requests are counted with zero tokens and
/// an unknown cost (`unpriced_requests`), so this alert is the only sign that tokens were not read.
struct UnrecognizedUsageTracker {
    static let ruleName = "unrecognized_usage"

    var days = ModelDays()

    /// `keys`: the block's key names as the decoder bounded them (`a, b, c`), built into a String only
    /// when an alert is raised.
    mutating func record(model: UInt32, workflow: UInt32, owner: UInt32, keys: () -> String, requests: Int64,
                         time: EpochMillis, names: () -> StringTable, now: () -> EpochMillis, into out: inout [Alert]) {
        guard let d = days.count(requests, model: model, time: time) else { return }
        let names = names()
        let modelName = AlertText.name(model, names)
        let scope = [KeyValue("model", modelName)]
        let workflowName = AlertText.name(workflow, names), ownerName = AlertText.name(owner, names)
        let keyText = AlertText.truncated(keys())
        let message = "model \(AlertText.truncated(modelName)): a usage block no rule reads (keys: "
            + (keyText.isEmpty ? "none" : keyText) + "): \(d.requests) request\(d.requests == 1 ? "" : "s") on "
            + "\(RFC3339.day(d.start)) so far (first from workflow \(AlertText.truncated(workflowName)), owner "
            + "\(AlertText.truncated(ownerName))); counted with zero tokens and an unknown cost"
        out.append(Alert(
            id: Alert.makeID(rule: UnrecognizedUsageTracker.ruleName, scope: scope, periodStart: d.start,
                             kind: .unrecognizedUsage, threshold: ""),
            kind: .unrecognizedUsage, severity: .info, rule: UnrecognizedUsageTracker.ruleName, scope: scope,
            periodStart: d.start, periodEnd: d.end, thresholdMilliPct: nil, budget: nil, spent: nil,
            usedHundredthsPct: nil, projected: nil, topWorkflows: [], eventTime: time, emittedAt: now(),
            message: message,
            details: .unrecognized(model: modelName, requests: d.requests, workflow: workflowName, owner: ownerName,
                                   keys: keyText)))
    }
}
