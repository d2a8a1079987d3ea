/* ingest.native._native: the write path's per-line loops in C (see __init__.py). */
#include "record_slots.h"
#include "rowcodec.h"
#include "syslog5424.h"
#include "syslog_framing.h"

#ifndef SOURCE_SHA256
#define SOURCE_SHA256 "unknown"
#endif
/* Lets the build read which sources a binary came from without importing it. */
__attribute__((used)) static const char source_stamp[] = "SOURCE_SHA256=" SOURCE_SHA256;

static PyMethodDef methods[] = {
    {"configure", record_configure, METH_VARARGS,
     "configure(Record, field_names): read the Record slots' offsets."},
    {"normalize_into", normalize_into, METH_VARARGS, "The common case of normalize_batch's loop."},
    {"encode_rows", encode_rows, METH_VARARGS, "encode_rows(rows, ckeys, first_id, field_count)."},
    {"severity_from_line", py_severity_from_line, METH_O, "ingest.levels.severity_from_line."},
    {"docker_5424", docker_5424, METH_VARARGS, "Docker's RFC 5424 syslog frames to Records."},
    {"octet_frames", octet_frames, METH_VARARGS,
     "octet_frames(buf, pos, max_message, frames) -> where the well-formed run ended."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "The write path's per-line loops in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddStringConstant(m, "SOURCE_SHA256", SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
