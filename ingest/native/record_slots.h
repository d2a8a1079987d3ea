/* Reading and building ingest.record.Record from C through its slots (see record_slots.c). */
#ifndef LOGSITE_RECORD_SLOTS_H
#define LOGSITE_RECORD_SLOTS_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define RECORD_MAX_FIELDS 32

extern PyTypeObject *record_type;
extern int record_nfields;

/* The byte offset of Record's slot `name` (-1 with an exception when it is not a plain slot). */
Py_ssize_t record_slot(PyTypeObject *type, const char *name);

/* configure(Record, field_names): remembers the type and the slots in dataclass field order. */
PyObject *record_configure(PyObject *self, PyObject *args);

/* A new Record from record_nfields values in field order, without running __init__ (which only
 * assigns them; load.py refuses a Record with __post_init__). */
PyObject *record_new(PyObject *const *values);

#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

/* Set by the module's configure: each part binds the slots it reads. */
int rowcodec_bind(PyTypeObject *type);

#endif
