/*
 * own_gil_single.c — the extension module corral_single for
 * tests/integration/own_gil.sh: initialized the single-phase way
 * (PyModule_Create with per-process state), which an interpreter with its
 * own GIL refuses to load. The test builds it against the Python corral
 * embeds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static struct PyModuleDef own_gil_single_def = {
    PyModuleDef_HEAD_INIT, .m_name = "corral_single", .m_doc = "a single-phase-init module",
    .m_size = -1, /* per-process state: single-phase init */
};

PyMODINIT_FUNC PyInit_corral_single(void);

PyMODINIT_FUNC PyInit_corral_single(void)
{
    return PyModule_Create(&own_gil_single_def);
}
