/* Octet-counted syslog framing (syslog_framing.c). */
#ifndef LOGSITE_SYSLOG_FRAMING_H
#define LOGSITE_SYSLOG_FRAMING_H
#include "record_slots.h"

PyObject *octet_frames(PyObject *self, PyObject *args);

#endif
