# What both cross toolchain files share (cmake/aarch64-linux-gnu.cmake,
# cmake/arm-linux-gnueabihf.cmake): Debian's cross gcc named by BETANET_TRIPLET, the
# target's libraries and headers from the multiarch directories, and programs run under
# BETANET_QEMU (qemu-user) for make test-cross. The including file sets those two and
# CMAKE_SYSTEM_PROCESSOR.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${BETANET_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${BETANET_TRIPLET}-g++)

# Libraries and headers of the target come from the multiarch directories, never the host's.
set(CMAKE_LIBRARY_ARCHITECTURE ${BETANET_TRIPLET})
set(CMAKE_FIND_ROOT_PATH /usr/${BETANET_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${BETANET_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

set(CMAKE_CROSSCOMPILING_EMULATOR ${BETANET_QEMU} -L /usr/${BETANET_TRIPLET})
