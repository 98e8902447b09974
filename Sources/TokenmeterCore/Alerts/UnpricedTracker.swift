/// Models without a price: `unpriced_model` once per model per UTC day (of the event time), at its first
/// unpriced request that day, with the day's request count so far and the caller that made it.
struct UnpricedTracker {
    static let ruleName = "unpriced_model"

    var days = ModelDays()

    mutating func record(model: UInt32, workflow: UInt32, owner: UInt32, requests: Int64, time: EpochMillis,
                         names: () -> StringTable, now: () -> EpochMillis, into out: inout [Alert]) {
        guard let d = days.count(requests, model: model, time: time) else { return }
        let names = names()
        let modelName = AlertText.name(model, names)
        let scope = [KeyValue("model", modelName)]
        let workflowName = AlertText.name(workflow, names), ownerName = AlertText.name(owner, names)
        let message = "model \(AlertText.truncated(modelName)) has no price: \(d.requests) request\(d.requests == 1 ? "" : "s") on "
            + "\(RFC3339.day(d.start)) so far (first from workflow \(AlertText.truncated(workflowName)), owner "
            + "\(AlertText.truncated(ownerName))); "
            + "its tokens are counted, its cost is not"
        out.append(Alert(
            id: Alert.makeID(rule: UnpricedTracker.ruleName, scope: scope, periodStart: d.start, kind: .unpricedModel, threshold: ""),
            kind: .unpricedModel, severity: .info, rule: UnpricedTracker.ruleName, scope: scope,
            periodStart: d.start, periodEnd: d.end, thresholdMilliPct: nil, budget: nil, spent: nil,
            usedHundredthsPct: nil, projected: nil, topWorkflows: [], eventTime: time, emittedAt: now(),
            message: message, details: .unpriced(model: modelName, requests: d.requests, workflow: workflowName, owner: ownerName)))
    }
}
