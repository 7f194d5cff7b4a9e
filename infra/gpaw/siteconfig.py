# GPAW build configuration used by infra/gpaw/install.sh (read by GPAW's setup.py through
# the GPAW_CONFIG environment variable). Serial build (no MPI): one process per DFT job.
# GPAW >= 26 compiles its C sources as C++17, so the compiler must be a C++ driver;
# with the default `gcc`, the C++ headers (<algorithm>) are not found.
compiler = 'g++'
mpi = False
# setup.py starts from libraries = ['xc'] (Debian's libxc-dev, 5.2.3 on bookworm) and adds
# 'blas' itself (libopenblas-dev provides libblas.so). FFTW is faster than numpy's FFT
# for the plane-wave grids.
fftw = True
libraries += ['fftw3']  # noqa: F821 - `libraries` is defined by GPAW's setup.py
