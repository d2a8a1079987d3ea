/* Normalising Records into rows and encoding rows as binary COPY (rowcodec.c). */
#ifndef LOGSITE_ROWCODEC_H
#define LOGSITE_ROWCODEC_H
#include "record_slots.h"

PyObject *normalize_into(PyObject *self, PyObject *args);
PyObject *encode_rows(PyObject *self, PyObject *args);
PyObject *py_severity_from_line(PyObject *self, PyObject *arg);

#endif
