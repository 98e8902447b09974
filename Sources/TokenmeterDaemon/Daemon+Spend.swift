import TokenmeterCore
import TokenmeterKafka

extension Daemon {
    func routeSpend(topicIndex: Int, partition: Int32) -> [ChangelogRecord.SpendOut] { [] }
    func sendSpend() { spendInFlight.removeAll() }
}
