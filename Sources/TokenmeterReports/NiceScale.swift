import TokenmeterCore

/// Axis ticks at "nice" values (1, 2, 2.5, 5 x 10^k) covering [0, max], and log-scale decades.
public struct NiceScale: Sendable {
    public var max: Double
    public var step: Double
    public var ticks: [Double]

    /// About `count` ticks from 0 to a nice maximum >= `maxValue`.
    public init(maxValue: Double, count: Int = 5) {
        let m = maxValue > 0 && maxValue.isFinite ? maxValue : 1
        let raw = m / Double(Swift.max(count, 1))
        var mag = 1.0
        while mag * 10 <= raw { mag *= 10 }
        while mag > raw { mag /= 10 }
        let f = raw / mag
        let nice: Double = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10
        step = nice * mag
        var top = step
        while top < m - step * 1e-9 { top += step }
        max = top
        var t: [Double] = []
        var v = 0.0
        while v <= top + step / 2 { t.append(v); v += step }
        ticks = t
    }

    /// Powers of ten from below `minValue` to above `maxValue` (both > 0).
    public static func decades(_ minValue: Double, _ maxValue: Double) -> [Double] {
        var lo = 1.0
        while lo > minValue { lo /= 10 }
        while lo * 10 <= minValue { lo *= 10 }
        var out = [lo]
        while out.last! < maxValue { out.append(out.last! * 10) }
        if out.count < 2 { out.append(out.last! * 10) }
        return out
    }
}
