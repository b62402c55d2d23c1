"""flowrl_verify: check your PyTorch / NumPy RL fine-tuning code against flowrl's reference.

    import flowrl_verify as fv
    fv.assert_matches(my_sde_step, "sampler.sde", rtol=1e-5)

flowrl's functions over NumPy arrays (torch tensors accepted): sampler steps with log-probs
(sampler_step, sampler_logprob, ...), the Flow-GRPO family's losses with their gradients
(ppo_policy, logp_backward, kl_loss, guard_policy), advantages (adv_*), σ grids and
schedules (sigmas_*, betas, ...), Philox draws by coordinates (rng, uniform, normal) and
flowrl's transcendental functions (math). Golden cases as data: cases(), load(name),
compute(name, inputs), assert_matches(fn, name). Run directories: read_config, read_metrics,
read_checkpoint, read_audit, audit_diff. Preference files (docs/preferences.md): read_prefs,
NumPy alone. GFlowNets: Env (environments: states, masks, steps, exact target) and gfn_loss
(flowrl/gfn.h's losses with gradients). Errors raise FlowrlError with flowrl's message.
libflowrl.so is found through $FLOWRL_LIB, the source tree's build/, or an installed prefix
(library() says which). docs/python.md in the flowrl tree has the details."""
from ._lib import API_VERSION, FlowrlError, LibraryNotFound
from ._lib import loaded_from as _loaded_from
from .api import (RNG_PURPOSES, Backend, Step, adv_batch, adv_filter_zero, adv_mean_std, adv_per_prompt,
                  alphas_cumprod, betas, cfg_combine, ddim_timesteps, flow_x0, guard_policy, kl_loss,
                  logp_backward, math, math_functions, normal, ppo_policy, rng, sampler_logprob,
                  sampler_logprob_of, sampler_mean, sampler_step, sigmas_diffusers, sigmas_linspace,
                  sigmas_shifted_linspace, timesteps, to_numpy, uniform)
from .gfn import Env, gfn_loss
from .golden import Case, assert_matches, cases, compare, compute, golden_dir, info, load, ulp_distance
from .prefs import read_prefs
from .runs import (AuditDiff, audit_diff, checkpoints, read_audit, read_checkpoint, read_config,
                   read_metrics)
from .tensors import read_safetensors, write_safetensors

__version__ = "0.1.0"


def library():
    """(how, path, flowrl version) of the libflowrl.so in use, e.g. ("$FLOWRL_LIB",
    "/src/build/libflowrl.so.1", "0.1.0"); raises LibraryNotFound listing what was tried."""
    from . import _lib
    how, path = _loaded_from()
    return how, path, _lib.load().flowrl_version().decode()
