#include "framepress/DeviceBackend.h"

#include "framepress/CpuBackend.h"
#include "framepress/CudaBackend.h"

namespace fp {

std::unique_ptr<DeviceBackend> DeviceBackend::for_mode(DeviceMode mode) {
  if (mode == DeviceMode::Cpu) return std::make_unique<CpuBackend>();
  return std::make_unique<CudaBackend>(/*nvenc=*/mode == DeviceMode::Cuda);
}

}  // namespace fp
