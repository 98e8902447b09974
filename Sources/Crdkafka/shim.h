#ifndef TOKENMETER_CRDKAFKA_SHIM_H
#define TOKENMETER_CRDKAFKA_SHIM_H
// librdkafka's public C API, including the mock cluster used as the development and test broker.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#endif
