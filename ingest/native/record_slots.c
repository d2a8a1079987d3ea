/* Record's slots, found once through its member descriptors, so the loops in C read and build
 * Records without attribute lookups. Only objects whose type is exactly Record are read so. */
#include "record_slots.h"
#include <structmember.h>

PyTypeObject *record_type = NULL;
int record_nfields = 0;
static Py_ssize_t order[RECORD_MAX_FIELDS];

Py_ssize_t
record_slot(PyTypeObject *type, const char *name)
{
    PyObject *descr = PyDict_GetItemString(type->tp_dict, name);
    if (descr == NULL || Py_TYPE(descr) != &PyMemberDescr_Type) {
        PyErr_Format(PyExc_TypeError, "Record.%s is not a slot", name);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY)) {
        PyErr_Format(PyExc_TypeError, "Record.%s is not a plain object slot", name);
        return -1;
    }
    return member->offset;
}

PyObject *
record_configure(PyObject *self, PyObject *args)
{
    PyObject *type_obj, *names;
    if (!PyArg_ParseTuple(args, "O!O!", &PyType_Type, &type_obj, &PyTuple_Type, &names))
        return NULL;
    PyTypeObject *type = (PyTypeObject *)type_obj;
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (n > RECORD_MAX_FIELDS || type->tp_alloc == NULL) {
        PyErr_SetString(PyExc_TypeError, "Record has too many fields for ingest.native");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(names, i));
        if (name == NULL || (order[i] = record_slot(type, name)) < 0)
            return NULL;
    }
    if (rowcodec_bind(type) < 0)
        return NULL;
    Py_INCREF(type);
    Py_XSETREF(record_type, type);
    record_nfields = (int)n;
    Py_RETURN_NONE;
}

PyObject *
record_new(PyObject *const *values)
{
    PyObject *obj = record_type->tp_alloc(record_type, 0);
    if (obj == NULL)
        return NULL;
    for (int i = 0; i < record_nfields; i++)
        SLOT(obj, order[i]) = Py_NewRef(values[i]);
    return obj;
}
