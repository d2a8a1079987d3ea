/* Docker's RFC 5424 syslog messages to Records (syslog5424.c). */
#ifndef LOGSITE_SYSLOG5424_H
#define LOGSITE_SYSLOG5424_H
#include "record_slots.h"

PyObject *docker_5424(PyObject *self, PyObject *args);

#endif
