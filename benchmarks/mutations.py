"""Mutation check: break one feature at a time and see whether the tests notice.

Each mutation replaces one exact snippet of aekit's source (which must occur exactly once)
by a broken version: a corruption made the identity, a penalty's term multiplied by 0,
resuming switched off, ... The harness applies it in place, runs the tests that guard that
feature with ``pytest -x``, records whether they failed (caught) or passed (survived), and
restores the file in a ``finally`` (the original bytes written back, then ``git checkout``;
it refuses to start unless src/ is clean, so nothing of yours can be lost). Every run uses a
fresh bytecode cache so a stale .pyc can never hide a mutation.

First the selected tests run once on the unmutated source: they must pass there, or a
"caught" would mean nothing.

Writes benchmarks/results/mutations.json and prints a table.

    python benchmarks/mutations.py                 # all mutations (about 5-10 minutes on 2 cores)
    python benchmarks/mutations.py --only resume   # those whose name contains 'resume'
    python benchmarks/mutations.py --list
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

F = "tests/test_features.py"
T = "tests/test_training.py"
P = "tests/test_parts.py"
I = "tests/test_iwae.py"
CS = "tests/test_contractive_speed.py"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str          # relative to the repository root
    original: str      # must occur exactly once in the file
    mutated: str
    description: str
    tests: tuple       # pytest node ids or files, in the order to run them


MUTATIONS = [
    # -- training loop -----------------------------------------------------------------------
    Mutation("bfloat16-no-autocast", "src/aekit/train.py",
             "    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)",
             "    return contextlib.nullcontext",
             "precision='bfloat16' never enters autocast (the products stay float32)",
             (f"{T}::test_bfloat16_precision_computes_products_in_bfloat16_and_keeps_float32_state",)),
    Mutation("bfloat16-loss-not-float32", "src/aekit/model.py",
             "            out = out.to(x.dtype)",
             "            pass",
             "under autocast the reconstruction loss is computed on the bfloat16 decoder output",
             (f"{T}::test_bfloat16_reconstruction_loss_is_computed_in_float32",)),
    Mutation("loop-sets-no-epoch", "src/aekit/train.py",
             "        model.set_epoch(epoch)  # a resumed run sets it from the checkpoint's epoch",
             "        pass",
             "the loop does not tell the model its epoch (weight ramps stay at epoch 0)",
             ("tests/test_supervised.py::test_consistency_rampup_follows_its_schedule_through_the_loop",)),
    Mutation("consistency-no-rampup", "src/aekit/parts/heads.py",
             "        return self.consistency * (math.exp(-5.0 * (1.0 - epoch / r) ** 2) if epoch < r else 1.0)",
             "        return self.consistency",
             "the consistency weight ignores consistency_rampup",
             ("tests/test_supervised.py::test_consistency_rampup_follows_its_schedule_through_the_loop",)),
    Mutation("class-balance-dropped", "src/aekit/parts/heads.py",
             "            term = term + (self.class_balance / max(self.weight, 1e-12)) * kl",
             "            pass",
             "the class-balance term is computed but not added",
             ("tests/test_supervised.py::test_class_balance_term_matches_its_formula",
              "tests/test_supervised.py::test_class_balance_raises_an_under_predicted_class")),
    Mutation("class-balance-per-rank", "src/aekit/parts/heads.py",
             "            p_bar = p_sum / out.shape[0] if shard is None else shard.global_sum(p_sum) / shard.n_global",
             "            p_bar = p_sum / out.shape[0]",
             "data-parallel ranks take p̄ of the class-balance term over their own rows, not the global batch",
             ("tests/test_scale.py::test_class_balance_across_ranks_is_the_single_process_value",)),
    Mutation("class-prior-uniform", "src/aekit/supervised.py",
             "            self._head().prior.copy_(counts / counts.sum())",
             "            pass",
             "the classifier leaves the class prior uniform instead of the labelled rows' frequencies",
             ("tests/test_supervised.py::test_classifier_sets_the_prior_from_the_labelled_rows",)),
    Mutation("subnormal-flush-noop", "src/aekit/train.py",
             "t.masked_fill_(t.abs() < SUBNORMAL_BELOW, 0.0)",
             "pass",
             "flush_subnormal_state leaves subnormal optimiser moments in place",
             (f"{T}::test_flush_subnormal_state_zeroes_only_subnormal_moments",
              f"{T}::test_training_leaves_no_subnormal_optimizer_state")),
    Mutation("subnormal-flush-not-called", "src/aekit/train.py",
             "        flush_subnormal_state(optimizer)  # and at every epoch's end: checkpoints hold none",
             "        pass",
             "the loop no longer flushes subnormal moments at an epoch's end",
             (f"{T}::test_training_leaves_no_subnormal_optimizer_state",)),
    Mutation("keep-heap-not-called", "src/aekit/train.py",
             "        keep_heap()  # once per process: each step's tensors reuse heap pages (aekit._heap)",
             "        pass",
             "training no longer pins glibc's malloc thresholds (each step's memory faults in again)",
             ("tests/test_heap.py::test_training_keeps_freed_memory_in_the_heap",)),
    Mutation("keep-heap-trim-unpinned", "src/aekit/_heap.py",
             "                    ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok",
             "                    ok = ok",
             "only the mmap threshold is pinned; the heap's top is still trimmed after each step",
             ("tests/test_heap.py::test_training_keeps_freed_memory_in_the_heap",)),
    Mutation("keep-heap-ignores-opt-out", "src/aekit/_heap.py",
             '    if environ.get("AEKIT_KEEP_HEAP", "1").strip().lower() in ("0", "false", "no", "off"):',
             "    if False:",
             "AEKIT_KEEP_HEAP=0 no longer leaves the allocator alone",
             ("tests/test_heap.py",)),
    Mutation("tangents-reconstruction-is-encoder", "src/aekit/apps/tangents.py",
             'if of == "reconstruction":',
             'if False and of == "reconstruction":',
             "tangents(of='reconstruction') returns the encoder's tangents",
             ("tests/test_tangents.py::test_reconstruction_tangents_are_the_left_svd_of_the_bruteforce_jacobian",)),
    Mutation("resume-disabled", "src/aekit/train.py",
             "if resume and config.checkpoint_path and Path(config.checkpoint_path).exists():",
             "if False and resume and config.checkpoint_path and Path(config.checkpoint_path).exists():",
             "train(resume=True) ignores the checkpoint and starts afresh",
             (f"{T}::test_resume_equals_uninterrupted_run", f"{T}::test_resume_follows_a_checkpoint_of_another_seed",
              f"{T}::test_estimator_resume_via_checkpoint_path")),
    Mutation("resume-history-dropped", "src/aekit/train.py",
             'return epoch, list(history)',
             'return epoch, []',
             "a resumed run forgets the checkpoint's history records",
             (f"{T}::test_resume_follows_a_checkpoint_of_another_seed", f"{T}::test_resume_equals_uninterrupted_run")),
    Mutation("resume-rng-not-restored", "src/aekit/train.py",
             'generator.set_state(tensors["rng.generator"])',
             'pass',
             "a resumed run shuffles with its own seed, not the checkpoint's generator",
             (f"{T}::test_resume_follows_a_checkpoint_of_another_seed", f"{T}::test_resume_equals_uninterrupted_run")),
    Mutation("early-stopping-never-stops", "src/aekit/train.py",
             "return self.bad_epochs >= self.patience",
             "return False",
             "early stopping never fires",
             (f"{T}::test_early_stopping_stops_at_patience_and_restores_best",)),
    Mutation("best-weights-not-restored", "src/aekit/train.py",
             "        model.load_state_dict(stopper.best_state)\n    return history",
             "        pass\n    return history",
             "early stopping keeps the last weights, not the best",
             (f"{T}::test_early_stopping_stops_at_patience_and_restores_best",)),
    Mutation("targets-dropped", "src/aekit/train.py",
             "out = model(X[idx], None if y is None else y[idx])",
             "out = model(X[idx], None)",
             "the loop does not pass each batch's y to the model (ctx.y is None)",
             (f"{T}::test_targets_reach_penalties_aligned_with_their_rows",
              f"{T}::test_given_validation_targets_reach_validation_batches")),
    Mutation("validation-targets-misaligned", "src/aekit/train.py",
             "X[va], None if y is None else y[va]",
             "X[va], None if y is None else y[va.flip(0)]",
             "the validation split takes y's rows in another order than X's",
             (f"{T}::test_targets_reach_penalties_aligned_with_their_rows",)),
    Mutation("validation-targets-dropped", "src/aekit/train.py",
             "yb = None if y is None else y[i:j]",
             "yb = None",
             "evaluate() does not pass the validation targets on",
             (f"{T}::test_given_validation_targets_reach_validation_batches",
              f"{T}::test_targets_reach_penalties_aligned_with_their_rows")),
    # -- corruption --------------------------------------------------------------------------
    Mutation("gaussian-noise-identity", "src/aekit/parts/corruption.py",
             "return x + self.sigma * eps.to(x.device, x.dtype), None",
             "return x, None",
             "Gaussian corruption adds no noise",
             (f"{F}::test_denoising_beats_the_same_network_trained_without_corruption",)),
    Mutation("masking-noise-identity", "src/aekit/parts/corruption.py",
             "return x * keep",
             "return x",
             "masking corruption masks nothing",
             (f"{F}::test_denoising_beats_the_same_network_trained_without_corruption",)),
    Mutation("salt-and-pepper-identity", "src/aekit/parts/corruption.py",
             "return torch.where(hit, value, x)",
             "return x",
             "salt-and-pepper corruption changes nothing",
             (f"{F}::test_denoising_beats_the_same_network_trained_without_corruption",)),
    Mutation("corruption-skipped-in-forward", "src/aekit/model.py",
             "x_in = self.corruption(x)",
             "x_in = x",
             "the model's loss never applies its corruption",
             (f"{F}::test_denoising_beats_the_same_network_trained_without_corruption",)),
    # -- penalties -----------------------------------------------------------------------------
    Mutation("l1-zeroed", "src/aekit/parts/penalties.py",
             "return ctx.code.h.abs().sum(1)",
             "return 0 * ctx.code.h.abs().sum(1)",
             "the L1 code penalty contributes nothing",
             (f"{F}::test_l1_penalty_shrinks_the_code",)),
    Mutation("kl-sparsity-zeroed", "src/aekit/parts/penalties.py",
             "return kl_sparsity(ctx.code.h, self.rho)",
             "return 0 * kl_sparsity(ctx.code.h, self.rho)",
             "the KL sparsity penalty contributes nothing",
             (f"{F}::test_kl_sparsity_drives_mean_activations_to_rho",)),
    Mutation("contractive-exact-zeroed", "src/aekit/parts/penalties.py",
             "return mlp_jacobian_frobenius_sq(ctx.model.centred(ctx.x_in), linears, acts, hidden=ctx.hidden)",
             "return 0 * mlp_jacobian_frobenius_sq(ctx.model.centred(ctx.x_in), linears, acts, hidden=ctx.hidden)",
             "the exact contractive penalty contributes nothing",
             (f"{F}::test_exact_contractive_penalty_shrinks_the_jacobian",)),
    Mutation("contractive-hutchinson-zeroed", "src/aekit/parts/penalties.py",
             "return hutchinson_jacobian_frobenius_sq(ctx.x_in, ctx.model.encode_point, self.n_projections)",
             "return 0 * hutchinson_jacobian_frobenius_sq(ctx.x_in, ctx.model.encode_point, self.n_projections)",
             "the Hutchinson contractive penalty (encoding x̃ again: code noise, a context of its own) contributes nothing",
             (f"{F}::test_hutchinson_contractive_penalty_is_unbiased",)),
    Mutation("contractive-hutchinson-shared-zeroed", "src/aekit/parts/penalties.py",
             "return hutchinson_jacobian_frobenius_sq(ctx.x_in, n_projections=self.n_projections, h=ctx.code.h)",
             "return 0 * hutchinson_jacobian_frobenius_sq(ctx.x_in, n_projections=self.n_projections, h=ctx.code.h)",
             "the Hutchinson contractive penalty on the training forward pass's encoding contributes nothing",
             (f"{F}::test_hutchinson_contractive_shrinks_a_conv_encoders_jacobian",)),
    Mutation("contractive-gram-backward-halved", "src/aekit/parts/penalties.py",
             "grad_w = torch.mm(s, w).mul_(2)",
             "grad_w = torch.mm(s, w)",
             "the written-out backward of the Gram step gives half of ∂/∂W₁",
             (f"{P}::test_contractive_gram_route_gradients_equal_the_brute_force_jacobians",
              f"{P}::test_contractive_penalty_gradient_matches_finite_differences")),
    Mutation("contractive-forward-not-shared", "src/aekit/parts/penalties.py",
             'return ("hidden",)',
             "return ()",
             "the exact contractive penalty runs the encoder a second time instead of reading the forward pass",
             (f"{P}::test_contractive_penalty_reuses_the_forward_pass_with_the_same_loss_and_gradients",)),
    Mutation("vae-kl-zeroed", "src/aekit/parts/penalties.py",
             "return gaussian_kl(ctx.code.h, ctx.code.logvar)",
             "return 0 * gaussian_kl(ctx.code.h, ctx.code.logvar)",
             "a VAE's KL term contributes nothing to its loss",
             (f"{F}::test_larger_beta_gives_a_smaller_vae_kl",)),
    Mutation("weight-decay-zeroed", "src/aekit/parts/penalties.py",
             "return sum(w.pow(2).sum() for w in weights)",
             "return 0 * sum(w.pow(2).sum() for w in weights)",
             "the weight-decay penalty contributes nothing",
             (f"{F}::test_weight_decay_shrinks_the_weights",)),
    Mutation("penalty-weights-ignored", "src/aekit/model.py",
             '**{p.name: p.weight for p in self.penalties}}',
             '**{p.name: 1.0 for p in self.penalties}}',
             "every penalty weighs 1 whatever its setting (beta, l1, ...)",
             (f"{F}::test_larger_beta_gives_a_smaller_vae_kl",)),
    # -- structure ---------------------------------------------------------------------------
    Mutation("tied-decoder-own-weights", "src/aekit/parts/nets.py",
             "self._encoder_linears = list(encoder_linears)",
             "self._encoder_linears = nn.ModuleList(__import__('copy').deepcopy(lin) for lin in encoder_linears)",
             "the tied decoder trains its own copies of the encoder's weights",
             (f"{F}::test_tied_decoder_uses_the_encoders_current_weights_transposed",
              f"{F}::test_tied_weight_gets_gradient_from_encoder_and_decoder")),
    Mutation("tied-decoder-detached", "src/aekit/parts/nets.py",
             "z = F.linear(z, lin.weight.t(), bias)",
             "z = F.linear(z, lin.weight.t().detach(), bias)",
             "the shared weight gets no gradient from the decoder side",
             (f"{F}::test_tied_weight_gets_gradient_from_encoder_and_decoder",
              f"{F}::test_tied_decoder_uses_the_encoders_current_weights_transposed")),
    Mutation("centring-ignored", "src/aekit/model.py",
             "return x if self.offset is None else x - self.offset",
             "return x",
             "the encoder sees x, not x - mean",
             (f"{F}::test_centring_feeds_the_encoder_x_minus_the_training_mean",
              f"{F}::test_centred_linear_autoencoder_finds_pca_subspace_of_offset_data")),
    Mutation("centring-offset-never-set", "src/aekit/model.py",
             "            self.offset.copy_(self.transformed(X).mean(0))",
             "            pass",
             "the centring offset stays 0 instead of the training mean",
             (f"{F}::test_centring_feeds_the_encoder_x_minus_the_training_mean",
              f"{F}::test_centred_linear_autoencoder_finds_pca_subspace_of_offset_data")),
    Mutation("code-noise-ignored", "src/aekit/parts/codes.py",
             "if self.noise and self.training:",
             "if False:",
             "code_noise adds no noise before the code activation",
             (f"{F}::test_code_noise_makes_sigmoid_codes_binary",)),
    # -- the IWAE objective (VAE importance_samples) ---------------------------------------------
    Mutation("iwae-mean-not-logmeanexp", "src/aekit/model.py",
             "return math.log(log_w.shape[1]) - torch.logsumexp(log_w, 1)",
             "return -log_w.mean(1)",
             "the IWAE term averages log w (k draws of the ELBO) instead of log-mean-exp",
             (f"{I}::test_below_log_px_and_growing_with_k", f"{I}::test_the_bound_against_brute_force_densities",
              f"{I}::test_iwae_training_raises_the_test_likelihood")),
    Mutation("iwae-prior-ratio-wrong", "src/aekit/parts/codes.py",
             " + 0.5 * eps.pow(2).sum(-1) + 0.5",
             " + 0.5",
             "log p(z) − log q(z|x) forgets q's ½‖ε‖²",
             (f"{I}::test_the_bound_against_brute_force_densities", f"{I}::test_exact_for_any_k_when_q_is_the_true_posterior")),
    Mutation("iwae-kl-counted-twice", "src/aekit/model.py",
             "and not (iwae and isinstance(p, PriorKL))]",
             "]",
             "the KL penalty is added on top of the IWAE bound that already holds it",
             (f"{I}::test_training_uses_the_bound_and_gradients_flow", f"{I}::test_the_bound_against_brute_force_densities")),
    Mutation("iwae-draws-detached", "src/aekit/parts/codes.py",
             "return mu[:, None, :] + std[:, None, :] * eps, eps",
             "return (mu[:, None, :] + std[:, None, :] * eps).detach(), eps",
             "no gradient reaches the encoder through the k draws",
             (f"{I}::test_training_uses_the_bound_and_gradients_flow",)),
    # -- loading on another device ----------------------------------------------------------
    Mutation("load-device-not-applied", "src/aekit/io.py",
             '        params["device"] = device\n',
             "        pass\n",
             "aekit.load(path, device='cpu') keeps the device the model was fitted on",
             ("tests/test_io_hardening.py::test_a_gpu_fitted_model_without_a_gpu_needs_device_cpu",
              "tests/test_io_hardening.py::test_cli_loading_verbs_take_device")),
    Mutation("load-absent-device-unexplained", "src/aekit/io.py",
             "    if isinstance(saved, str):",
             "    if False:",
             "a model fitted on an absent GPU fails to load without saying that device='cpu' loads it",
             ("tests/test_io_hardening.py::test_a_gpu_fitted_model_without_a_gpu_needs_device_cpu",
              "tests/test_io_hardening.py::test_cli_loading_verbs_take_device")),
    Mutation("load-device-not-reaching-members", "src/aekit/apps/anomaly.py",
             "                params[\"device\"] = self.device\n",
             "                pass\n",
             "an AnomalyDetector loaded with device='cpu' rebuilds its members on the device they were fitted on",
             ("tests/test_io_hardening.py::test_a_gpu_fitted_anomaly_detector_loads_its_members_on_the_cpu",)),
    # -- what benchmarks/contractive_speed.py's figures rest on ------------------------------
    Mutation("contractive-bench-plain-loss-no-penalty", "benchmarks/contractive_speed.py",
             "    return recon + LAMBDA * jac",
             "    return recon",
             "the plain contractive loop trains the reconstruction alone (a cheaper reference)",
             (CS,)),
    Mutation("contractive-bench-vmap-not-squared", "benchmarks/contractive_speed.py",
             "    return jac.pow(2).sum((1, 2))",
             "    return jac.abs().sum((1, 2))",
             "the plain loop's torch.func penalty is Σ|J|, not ‖J‖²_F",
             (CS,)),
    Mutation("contractive-bench-plain-no-step", "benchmarks/contractive_speed.py",
             "        opt.step()\n",
             "        pass\n",
             "the plain contractive loop never steps its optimiser",
             (CS,)),
    Mutation("iwae-setting-dropped", "src/aekit/model.py",
             'code = GaussianCode(features, k, p["importance_samples"])',
             "code = GaussianCode(features, k)",
             "importance_samples never reaches the Gaussian code: the VAE trains on the ELBO",
             (f"{I}::test_history_validation_and_save_load", f"{I}::test_iwae_training_raises_the_test_likelihood")),
]


def _git(*args) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def run_tests(tests, threads: int, timeout: int) -> tuple[int, str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), AEKIT_TEST_THREADS=str(threads), PYTHONDONTWRITEBYTECODE="1")
    with tempfile.TemporaryDirectory(prefix="aekit-mut-pyc-") as pyc:
        env["PYTHONPYCACHEPREFIX"] = pyc  # never a stale .pyc of the other version of the file
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-rf",
                                   *tests], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
            rc, out = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc, out = -1, f"timed out after {timeout} s\n{exc.stdout or ''}"
    return rc, out, time.perf_counter() - t0


def first_failure(out: str) -> str | None:
    m = re.search(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    return m.group(1) if m else None


def apply_and_test(mut: Mutation, threads: int, timeout: int) -> dict:
    path = ROOT / mut.file
    original = path.read_bytes()
    text = original.decode()
    count = text.count(mut.original)
    if count != 1:
        raise SystemExit(f"{mut.name}: the original snippet occurs {count} times in {mut.file}; fix the mutation.")
    try:
        path.write_text(text.replace(mut.original, mut.mutated))
        rc, out, seconds = run_tests(mut.tests, threads, timeout)
    finally:
        path.write_bytes(original)
        _git("checkout", "--", mut.file)
    caught = rc == 1  # tests ran and failed; 2-5 are pytest's own errors, -1 a timeout
    result = {"mutation": mut.name, "file": mut.file, "description": mut.description,
              "status": "caught" if caught else ("survived" if rc == 0 else f"error (pytest exit {rc})"),
              "caught_by": first_failure(out) if caught else None, "tests": list(mut.tests),
              "seconds": round(seconds, 1)}
    if not caught:
        result["output_tail"] = out[-3000:]
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="run the mutations whose name contains this")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the tests (AEKIT_TEST_THREADS)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per pytest run")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/mutations.json")
    args = ap.parse_args(argv)
    todo = [m for m in MUTATIONS if not args.only or args.only in m.name]
    if args.list:
        for m in todo:
            print(f"{m.name:32s} {m.file:30s} {m.description}")
        return 0
    guarded = ["src", *sorted({m.file for m in todo if not m.file.startswith("src/")})]
    if _git("status", "--porcelain", "--", *guarded).strip():
        raise SystemExit(f"{' or '.join(guarded)} has uncommitted changes; commit or stash them first (the harness "
                         "restores files with git checkout).")

    for m in todo:  # every snippet must be found exactly once before anything runs
        count = (ROOT / m.file).read_text().count(m.original)
        if count != 1:
            raise SystemExit(f"{m.name}: the original snippet occurs {count} times in {m.file}; fix the mutation.")
    selected = list(dict.fromkeys(t for m in todo for t in m.tests))
    rc, out, seconds = run_tests(selected, args.threads, args.timeout)
    print(f"baseline: {len(selected)} selections on the unmutated source, pytest exit {rc}, {seconds:.0f} s")
    if rc != 0:
        print(out[-5000:])
        raise SystemExit("the tests fail on the unmutated source: fix that first.")

    results = []
    try:
        for m in todo:
            r = apply_and_test(m, args.threads, args.timeout)
            results.append(r)
            print(f"  {r['status']:9s} {m.name:32s} {r['seconds']:6.1f} s  {r['caught_by'] or ''}", flush=True)
    finally:
        dirty = _git("status", "--porcelain", "--", *guarded).strip()
        if dirty:
            print(f"WARNING: {' or '.join(guarded)} is not clean after the run:\n{dirty}", file=sys.stderr)

    width = max(len(r["mutation"]) for r in results)
    print(f"\n{'mutation':{width}s}  status    caught by")
    for r in results:
        print(f"{r['mutation']:{width}s}  {r['status']:8s}  {r['caught_by'] or '-'}")
    n_caught = sum(r["status"] == "caught" for r in results)
    print(f"\n{n_caught}/{len(results)} mutations caught")

    if not args.no_write:
        import platform

        result = {
            "benchmark": "mutations",
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "commit": _git("rev-parse", "HEAD").strip(),
            "python": platform.python_version(),
            "torch_threads": args.threads,
            "baseline": {"selections": selected, "pytest_exit": rc, "seconds": round(seconds, 1)},
            "caught": n_caught,
            "total": len(results),
            "results": results,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / "mutations.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp, path)
        print(f"wrote {path}")
    return 0 if n_caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
