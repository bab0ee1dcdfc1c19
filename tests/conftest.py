import torch

# The suite runs beside other jobs on 2 cores; the tensors here are small, so one thread is enough.
torch.set_num_threads(1)
