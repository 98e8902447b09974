public enum TokenmeterKafka {}
