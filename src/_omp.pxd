# OpenMP stand-ins: the kernels compile with and without OpenMP.
# With -fopenmp, _OPENMP is defined and these are the real runtime functions;
# without it they report a single thread and prange runs serially.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define PYCONV1D_HAVE_OPENMP 1
    #else
    #define PYCONV1D_HAVE_OPENMP 0
    static inline int omp_get_max_threads(void) { return 1; }
    static inline int omp_get_thread_num(void) { return 0; }
    #endif
    """
    const int PYCONV1D_HAVE_OPENMP
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
