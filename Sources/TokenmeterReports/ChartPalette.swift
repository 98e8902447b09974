import TokenmeterCore

/// Okabe-Ito colours: distinguishable with the common colour-vision deficiencies, in an order that keeps
/// neighbours apart; grey for "other".
public enum ChartPalette {
    public static let series = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C6D1F", "#F0E442"]
    public static let other = "#B8B8B8"
    public static let ink = "#1f2328"
    public static let muted = "#656d76"
    public static let grid = "#e6e8eb"

    public static func color(_ i: Int) -> String { series[i % series.count] }
}
