public enum TokenmeterDaemon {}
