"""Training with Accelerate: ``xlre train`` is a thin caller of :func:`train`.

Consumes an annotation run and an encoder (hub name or local path); produces a model
directory::

    OUT/
      config.json, model.safetensors      the best model (XlreModel.from_pretrained(OUT))
      tokenizer files                     the tokenizer (with entity markers if used)
      train.toml                          the resolved settings (feed back with --config)
      metrics.json                        {split: {lang: {relation_micro_f1, ...}}}
      pr_curve_dev.png, pr_curve_test.png held-out PR curves of the best model
      history.json                        per-epoch dev figures and losses
      data_report.json                    what the data builder counted and dropped
      checkpoints/step-00000120/          resumable states (accelerator.save_state)

The same code runs on one CPU, one GPU or many (``accelerate launch -m xlre.cli train
...``): Accelerate places the model, shards the batches and gathers evaluation outputs.
Mixed precision, gradient accumulation, warmup then linear decay, evaluation each epoch,
early stopping on the dev score, and checkpoints every N steps. ``resume=True`` continues
from the newest checkpoint to the same result as an uninterrupted run: the data order is a
function of (seed, epoch), dropout draws are seeded per batch, and the optimizer,
schedule and RNG states are in the checkpoint.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import math
import os
import pickle
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, get_linear_schedule_with_warmup

from xlre.data import (
    Collator,
    EpochSampler,
    MarkedSource,
    RelationData,
    Runs,
    TrainUnits,
    build_relation_data,
    describe_sources,
    load_sources,
    run_dirs,
    scan_run,
)
from xlre.evaluation import (
    ALL,
    choose_threshold,
    evaluate_split,
    headline,
    predict_split,
    score_split,
    to_jsonable,
    write_pr_png,
)
from xlre.modeling import (
    XlreModel,
    add_lora,
    class_weights,
    count_parameters,
    merged_state_dict,
    require_peft,
)
from xlre.training.checkpoints import (
    CHECKPOINTS,
    STATE_FILE,
    TrainError,
    TrainerState,
    check_resume,
    latest_checkpoint,
    run_inputs,
)
from xlre.training.components import (
    encoder_max_tokens,
    flat_settings,
    mixed_precision,
    param_groups,
    relation_names,
    tracker_names,
    training_languages,
)
from xlre.training.refit import refit_relation_head
from xlre.training.settings import Settings

# Accelerate's logger: messages from the main process only, unless asked otherwise.
logger = get_logger(__name__)

#: ``progress(kind, advance, total)``: kind is "epoch", "train", "eval", or "refit
#: features" and "refit" (:mod:`xlre.training.refit`); called on the main process only.
#: Before each "train" advance comes a "loss" call whose ``advance`` is
#: the mean training loss of the epoch's batches so far and ``total`` their count; a
#: callback that knows only the other kinds ignores it.
ProgressFn = Callable[[str, float, int], None]

#: With ``train.group_by_length``, items are sorted by length within groups of this many
#: batches.
LENGTH_GROUP_BATCHES = 50
LOSS_NAMES = ("loss", "entity_loss", "sentence_loss", "bag_loss", "agreement_loss")


def dev_score(metrics: dict[str, dict[str, Any]], tuned: bool = False) -> float:
    """Early-stopping score: the mean over languages of the gold marked sentences' F1
    when the dev split has any (gold beats distant labels for choosing a model), else of
    relation micro-F1 (entity F1 when the relation head is off).

    ``tuned`` (``train.tune_threshold``): the score at the threshold the model would be
    given (:func:`xlre.evaluation.choose_threshold`, on every language together), so a
    model is not judged by a threshold it will not use."""
    if tuned and ALL in metrics:
        chosen = choose_threshold(metrics[ALL])
        if chosen is not None:
            return chosen[1]
    langs = [m for lg, m in metrics.items() if lg != ALL]
    if not langs:
        return 0.0
    marked = [m["marked_f1"] for m in langs if "marked_f1" in m]
    if marked:
        return sum(marked) / len(marked)
    key = "relation_micro_f1" if all("relation_micro_f1" in m for m in langs) else "entity_f1"
    return sum(m.get(key, 0.0) for m in langs) / len(langs)


def train(
    run_dir: Runs,
    model_name_or_path: str,
    out_dir: Path | str,
    settings: Settings,
    resume: bool = False,
    progress: ProgressFn | None = None,
    marked: Sequence[MarkedSource] = (),
    skip_bad: bool = False,
) -> dict[str, Any]:
    """Train a model on the run in ``run_dir`` (or the runs, a list: trained on together,
    :func:`xlre.data.load_runs`) and/or the gold marked files ``marked``
    (each in the split it names); return ``metrics.json``'s content.

    ``model_name_or_path`` is a Hugging Face encoder (hub name or local directory).
    Steps: :meth:`Trainer.prepare`, then per epoch :meth:`Trainer.run_epoch` and
    :meth:`Trainer.end_epoch` (evaluate dev, keep the best model, checkpoint), then
    :meth:`Trainer.finish` (the best model on dev and test, ``history.json``).
    """
    trainer = Trainer.prepare(run_dir, model_name_or_path, out_dir, settings, resume,
                              progress, marked, skip_bad)
    trainer.warm_up_head()
    while not trainer.done:
        if not trainer.run_epoch():
            return trainer.stop_on_request()
        trainer.end_epoch()
    return trainer.finish()


class Trainer:
    """One training session: the Accelerate objects, the data and where training stands.

    Build it with :meth:`prepare`; :func:`train` runs the steps in order.
    """

    def __init__(self, accelerator: Accelerator, model: Any, tokenizer: Any, optimizer: Any,
                 scheduler: Any, train_dl: Any, units: TrainUnits, data: RelationData,
                 settings: Settings, out_dir: Path, state: TrainerState, trackers: list[str],
                 progress: ProgressFn | None,
                 param_counts: dict[str, Any] | None = None) -> None:
        self.accelerator = accelerator
        self.model = model
        self.tokenizer = tokenizer
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_dl = train_dl
        self.units = units
        self.data = data
        self.settings = settings
        self.out_dir = out_dir
        self.state = state
        self.trackers = trackers
        self.progress = progress if accelerator.is_main_process else None
        self.main = accelerator.is_main_process
        self.started = time.perf_counter()
        self.tokens_seen = 0
        self.stopped_early = False
        #: (epoch, dev predictions) of the model last saved as best in this session:
        #: :meth:`finish` scores them instead of predicting dev again.
        self.best_dev_rows: tuple[int, list[dict[str, Any]]] | None = None
        #: :func:`xlre.modeling.count_parameters` of the model before Accelerate wrapped
        #: it (history.json's summary).
        self.param_counts = dict(param_counts or {})

    # ------------------------------------------------------------------ prepare
    @classmethod
    def prepare(
        cls,
        run_dir: Runs,
        model_name_or_path: str,
        out_dir: Path | str,
        settings: Settings,
        resume: bool = False,
        progress: ProgressFn | None = None,
        marked: Sequence[MarkedSource] = (),
        skip_bad: bool = False,
    ) -> Trainer:
        """Check the output directory, load the encoder and the data, build the model,
        optimizer, schedule and loader, and restore the newest checkpoint on ``resume``."""
        runs = run_dirs(run_dir)
        run_dir = runs or None
        out_dir = Path(out_dir)
        where = describe_sources(run_dir, marked)
        inputs = run_inputs(model_name_or_path, run_dir, marked)
        tcfg = settings.train
        trackers = tracker_names(tcfg.tracker)
        accelerator = Accelerator(
            mixed_precision=mixed_precision(tcfg.mixed_precision),
            gradient_accumulation_steps=tcfg.gradient_accumulation_steps,
            log_with=trackers or None,
            project_config=ProjectConfiguration(project_dir=str(out_dir), logging_dir=str(out_dir / "logs")),
            dataloader_config=DataLoaderConfiguration(use_seedable_sampler=False),
        )
        # A save_best killed while swapping: OUT put back, its temporaries removed, before
        # any process reads OUT.
        if accelerator.is_main_process:
            recover_model_dir(out_dir)
        accelerator.wait_for_everyone()
        if resume:
            check_resume(out_dir, settings, inputs)
        elif (out_dir / "train.toml").exists() and latest_checkpoint(out_dir) is not None:
            raise TrainError(
                f"{out_dir} holds an earlier training run; pass --resume to continue it, or "
                "choose a new --out"
            )
        set_seed(tcfg.seed)
        main = accelerator.is_main_process
        if main:
            out_dir.mkdir(parents=True, exist_ok=True)

        def load_error(exc: Exception) -> TrainError:
            return TrainError(
                f"cannot load the encoder {model_name_or_path!r}: {exc}\nGive --model a local "
                "directory: a downloaded checkpoint, or one built offline with "
                "`xlre init-model --tiny --run RUN_DIR --out DIR`"
            )

        if settings.model.peft == "lora":
            require_peft()  # before the encoder and the data are loaded
        try:  # the tokenizer first: a missing encoder fails before the pass over the run
            tokenizer = AutoTokenizer.from_pretrained(str(model_name_or_path))
        except OSError as exc:
            raise load_error(exc) from None
        sources = load_sources(run_dir, marked, skip_bad, accelerator.main_process_first)
        labels, _, _ = scan_run(sources[0], settings.data)
        if not labels.relations and settings.model.relation_head:
            raise TrainError(
                f"{where}: no sentence has a relation, so the relation head has nothing to "
                "learn; check the run (xlre runs show) or set model.relation_head=false"
            )
        head_settings = asdict(settings.model)
        # How the encoder is trained is the trainer's business, not the model config's
        # (add_lora records it there as peft_training).
        peft_method = head_settings.pop("peft")
        lora = {k: head_settings.pop(f"lora_{k}")
                for k in ("rank", "alpha", "dropout", "target_modules")}
        head_settings["relation_names"] = relation_names(runs)
        try:
            model, tokenizer = XlreModel.from_encoder(
                str(model_name_or_path), labels, tokenizer=tokenizer,
                relation_repr=settings.data.relation_repr,
                max_seq_length=settings.data.max_seq_length, data_config=asdict(settings.data),
                **head_settings,
            )
        except OSError as exc:
            raise load_error(exc) from None
        if tcfg.freeze_word_embeddings:
            model.encoder.get_input_embeddings().weight.requires_grad_(False)
        if peft_method == "lora":  # fixes the whole encoder but its adapters
            add_lora(model, **lora)
        param_counts = count_parameters(model)
        logger.info("trainable parameters: %d of %d (%.2f%%)",
                    param_counts["trainable_parameters"], param_counts["total_parameters"],
                    100 * param_counts["trainable_share"])
        max_len = encoder_max_tokens(model)
        if settings.data.max_seq_length > max_len:
            raise TrainError(
                f"data.max_seq_length = {settings.data.max_seq_length} but the encoder takes at "
                f"most {max_len} tokens; set data.max_seq_length={max_len} or less"
            )
        data = build_relation_data(run_dir, tokenizer, settings.data, labels,
                                   main_process_first=accelerator.main_process_first,
                                   marked=marked, skip_bad=skip_bad, loaded=sources)
        if len(data.splits["train"]) == 0:
            raise TrainError(f"{where}: the train split is empty; lower data.dev_fraction and "
                             "data.test_fraction, or give a train:LANG:PATH marked file")
        # Extraction warns about documents in other languages (config.languages).
        model.config.languages = training_languages(data.splits["train"])
        units = TrainUnits(data.splits["train"], tcfg.mil, settings.data.max_bag_pairs, tcfg.seed)
        select = units.balanced(tcfg.max_units_per_relation, tcfg.negatives_per_positive)
        sampler = EpochSampler(
            len(units), tcfg.seed,
            lengths=units.lengths(data.splits["train"]) if tcfg.group_by_length else None,
            group_size=LENGTH_GROUP_BATCHES * tcfg.batch_size, select=select)
        data.report["units_train"] = len(units)
        data.report["units_train_positive"] = sum(1 for rels in units.relations if rels)
        data.report["units_per_epoch"] = len(sampler)
        counts = [0] * len(labels.relations)
        for rels in units.relations:
            for rel in rels:
                counts[rel] += 1
        model.relation_pos_weight = class_weights(counts, tcfg.relation_class_weight)
        if model.relation_pos_weight is not None:
            data.report["relation_class_weights"] = {
                name: round(float(w), 4)
                for name, w in zip(labels.relations, model.relation_pos_weight.tolist(), strict=True)}
        if main:
            (out_dir / "train.toml").write_text(settings.to_toml(), encoding="utf-8")
            (out_dir / "train_inputs.json").write_text(
                json.dumps(inputs) + "\n",
                encoding="utf-8")
            (out_dir / "data_report.json").write_text(
                json.dumps(data.report, indent=2) + "\n", encoding="utf-8")

        train_dl = DataLoader(
            units, batch_size=tcfg.batch_size, sampler=sampler,
            collate_fn=Collator(data.splits["train"], len(labels.relations), tokenizer.pad_token_id),
            generator=torch.Generator().manual_seed(tcfg.seed),
        )
        steps_per_epoch = math.ceil(len(train_dl) / tcfg.gradient_accumulation_steps)
        total_steps = steps_per_epoch * tcfg.epochs
        if tcfg.max_steps:
            total_steps = min(total_steps, tcfg.max_steps)
        optimizer = torch.optim.AdamW(param_groups(model, settings))
        scheduler = get_linear_schedule_with_warmup(
            optimizer, int(tcfg.warmup_ratio * total_steps), total_steps)
        model, optimizer, train_dl, scheduler = accelerator.prepare(
            model, optimizer, train_dl, scheduler)

        state = TrainerState()
        if resume:
            ckpt = latest_checkpoint(out_dir)
            if ckpt is None:
                raise TrainError(f"{out_dir}: no checkpoint to resume from; start without --resume")
            try:  # optimizer, schedule and RNG states are pickles: load no code from them
                accelerator.load_state(str(ckpt), load_kwargs={"weights_only": True})
            except pickle.UnpicklingError as err:
                raise TrainError(
                    f"{ckpt}: a checkpoint holds objects torch refuses to load with "
                    f"weights_only ({str(err).splitlines()[0]}); resume only from "
                    "checkpoints you wrote, or start without --resume") from None
            state = TrainerState(**json.loads((ckpt / STATE_FILE).read_text(encoding="utf-8")))
            logger.info("resumed from %s (epoch %d, step %d)", ckpt, state.epoch, state.global_step)
            if state.finished:
                logger.info("that run had finished; nothing left to train")
        if trackers:
            accelerator.init_trackers("xlre", config=flat_settings(settings.to_dict()))
        return cls(accelerator, model, tokenizer, optimizer, scheduler, train_dl, units, data,
                   settings, out_dir, state, trackers, progress, param_counts)

    @property
    def done(self) -> bool:
        return self.state.epoch >= self.settings.train.epochs or self.state.finished

    # ------------------------------------------------------------------ an epoch
    def run_epoch(self) -> bool:
        """Train the rest of the current epoch; ``False`` when ``train.stop_after_steps``
        was reached (a checkpoint is then written)."""
        tcfg, state, accelerator = self.settings.train, self.state, self.accelerator
        epoch = state.epoch
        # Through the prepared loader: load_state may have swapped in its own sampler copy.
        self.train_dl.set_epoch(epoch)
        self.units.set_epoch(epoch)
        self.model.train()
        loader = self.train_dl
        if state.batches_done:
            loader = accelerator.skip_first_batches(self.train_dl, state.batches_done)
        if self.progress:
            self.progress("epoch", epoch, tcfg.epochs)
        running = state.running
        # The epoch's batches, fewer when train.max_steps ends training inside it.
        epoch_batches = len(self.train_dl)
        if tcfg.max_steps:
            epoch_batches = min(epoch_batches, state.batches_done + tcfg.gradient_accumulation_steps
                                * max(tcfg.max_steps - state.global_step, 0))
        for batch in loader:
            batch.pop("rows")
            # Dropout draws from an RNG seeded by (seed, epoch, batch): a resumed run makes
            # the same draws as an uninterrupted one, whatever the loaders consumed.
            set_seed(tcfg.seed + 1_000_003 * (epoch * len(self.train_dl) + state.batches_done),
                     device_specific=True)
            self.tokens_seen += int(batch["attention_mask"].sum())
            with accelerator.accumulate(self.model):
                out = self.model(**batch)
                accelerator.backward(out.loss)
                if accelerator.sync_gradients and tcfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(self.model.parameters(), tcfg.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad()
            state.batches_done += 1
            for name in LOSS_NAMES:
                value = getattr(out, name)
                if value is not None:
                    running[name] = running.get(name, 0.0) + float(value.detach())
            if self.progress:
                if "loss" in running:
                    self.progress("loss", running["loss"] / state.batches_done, state.batches_done)
                self.progress("train", 1, epoch_batches)
            if not accelerator.sync_gradients:
                continue
            state.global_step += 1
            self._log_step(running)
            if tcfg.checkpoint_every_steps and state.global_step % tcfg.checkpoint_every_steps == 0:
                self.checkpoint()
            if tcfg.max_steps and state.global_step >= tcfg.max_steps:
                return True  # the epoch ends here, and with it training (end_epoch)
            if tcfg.stop_after_steps and state.global_step >= tcfg.stop_after_steps:
                if not (self.out_dir / CHECKPOINTS / f"step-{state.global_step:08d}").exists():
                    self.checkpoint()
                return False
        return True

    def _log_step(self, running: dict[str, float]) -> None:
        state, log_every = self.state, self.settings.train.log_every_steps
        if log_every and state.global_step % log_every == 0:
            logs = {f"train/{k}": v / state.batches_done for k, v in running.items()}
            logs["train/lr"] = self.scheduler.get_last_lr()[0]
            if self.trackers:
                self.accelerator.log(logs, step=state.global_step)
            logger.info("step %d: %s", state.global_step, logs)

    def stop_on_request(self) -> dict[str, Any]:
        """End a session stopped by ``train.stop_after_steps``, to be resumed later."""
        logger.info("stopped after %d steps as asked; continue with --resume",
                    self.state.global_step)
        self.accelerator.end_training()
        return {"stopped_at_step": self.state.global_step}

    # ------------------------------------------------------------------ evaluate
    def end_epoch(self) -> None:
        """Evaluate on dev, keep the best model, maybe stop early; then checkpoint."""
        tcfg, state = self.settings.train, self.state
        epoch = state.epoch
        refit = (self.refit_head() if tcfg.head_refit_epochs and self.settings.model.relation_head
                 else None)
        dev = self.data.splits["dev"]
        rows = predict_split(self.model, dev, len(self.data.labels.relations),
                             self.tokenizer.pad_token_id, tcfg.eval_batch_size, self.accelerator)
        dev_metrics, _ = score_split(self.accelerator.unwrap_model(self.model), dev, rows,
                                     self.data.labels)
        # With no dev split every epoch counts as better: the last model is kept.
        score = dev_score(dev_metrics, tcfg.tune_threshold) if dev_metrics else None
        losses = {k: v / max(state.batches_done, 1) for k, v in state.running.items()}
        state.history.append({"epoch": epoch + 1, "step": state.global_step, "dev_score": score,
                              "losses": losses, "dev": headline(dev_metrics),
                              **({"head_refit": refit} if refit else {})})
        if self.trackers:
            self.accelerator.log({"dev/score": score, **{f"dev/{lg}/{k}": v for lg, m in
                                  headline(dev_metrics).items() for k, v in m.items()}},
                                 step=state.global_step)
        logger.info("epoch %d: dev score %s, losses %s", epoch + 1, score, losses)
        if score is None or score > state.best_score:
            state.best_score = score if score is not None else state.best_score
            state.best_epoch, state.bad_epochs = epoch + 1, 0
            self.save_best()
            self.best_dev_rows = (epoch + 1, rows)
        else:
            state.bad_epochs += 1
        state.epoch += 1
        state.batches_done = 0
        state.running = {}
        if tcfg.early_stopping_patience and state.bad_epochs >= tcfg.early_stopping_patience:
            logger.info("no better dev score for %d epochs: stopping early", state.bad_epochs)
            self.stopped_early = True
            state.finished = True
        if state.epoch >= tcfg.epochs or (tcfg.max_steps and state.global_step >= tcfg.max_steps):
            state.finished = True
        self.checkpoint()

    def warm_up_head(self) -> None:
        """``train.head_warmup_epochs``: before the first step, fit the relation head on
        the pretrained encoder's frozen features (linear probing, then fine-tuning: a
        fresh head's large early gradients distort the pretrained features, Kumar et al.
        2022). Runs once: a resumed session finds its summary in the state."""
        tcfg, state = self.settings.train, self.state
        if (not tcfg.head_warmup_epochs or not self.settings.model.relation_head
                or state.head_warmup is not None or state.global_step or state.finished):
            return
        state.head_warmup = self.refit_head(tcfg.head_warmup_epochs)
        logger.info("head warmup: %s", state.head_warmup)

    def refit_head(self, epochs: int | None = None) -> dict[str, Any]:
        """``train.head_refit_epochs`` (or ``epochs``): refit the relation head on the
        encoder's frozen features of the train split (:mod:`xlre.training.refit`), on
        every process alike."""
        tcfg, accelerator = self.settings.train, self.accelerator
        core = accelerator.unwrap_model(self.model)
        started = time.perf_counter()
        with accelerator.autocast():
            summary = refit_relation_head(
                core, self.data.splits["train"], len(self.data.labels.relations),
                self.tokenizer.pad_token_id, epochs=epochs or tcfg.head_refit_epochs,
                learning_rate=tcfg.head_refit_learning_rate, weight_decay=tcfg.weight_decay,
                batch_size=tcfg.head_refit_batch_size, feature_batch_size=tcfg.eval_batch_size,
                seed=tcfg.seed + self.state.epoch, progress=self.progress if self.main else None)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        logger.info("head refit: %s", summary)
        return summary

    # ------------------------------------------------------------------ checkpoint
    def checkpoint(self) -> None:
        """Save the resumable state (``accelerator.save_state`` plus the trainer's) and
        keep the newest ``train.keep_checkpoints``."""
        path = self.out_dir / CHECKPOINTS / f"step-{self.state.global_step:08d}"
        self.accelerator.save_state(str(path))
        if self.main:
            (path / STATE_FILE).write_text(json.dumps(asdict(self.state)) + "\n", encoding="utf-8")
            keep = self.settings.train.keep_checkpoints
            for old in sorted((self.out_dir / CHECKPOINTS).glob("step-*"))[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()

    def save_best(self) -> None:
        """Write the current model and tokenizer as the best model of ``out_dir``, through
        :func:`replace_model_dir`: a save killed midway leaves the previous best model whole."""
        accelerator = self.accelerator
        accelerator.wait_for_everyone()
        core = accelerator.unwrap_model(self.model)
        # On every process: gathering the weights is collective under FSDP and DeepSpeed.
        state_dict = accelerator.get_state_dict(self.model)
        if self.main:
            # LoRA adapters folded into the encoder's weights (a new dict: training goes
            # on with them as they are): the directory loads without peft.
            state_dict = merged_state_dict(state_dict, getattr(core.config, "peft_training", None))

            def write(new_dir: Path) -> None:
                core.save_pretrained(new_dir, save_function=accelerator.save, state_dict=state_dict)
                self.tokenizer.save_pretrained(new_dir)

            replace_model_dir(self.out_dir, write)
        # No process writes into out_dir (checkpoints) while it is being swapped.
        accelerator.wait_for_everyone()

    # ------------------------------------------------------------------ finish
    def finish(self) -> dict[str, Any]:
        """Score the best model on dev and test (``metrics.json``, PR curves) and write
        ``history.json``; return the metrics."""
        elapsed = time.perf_counter() - self.started
        accelerator, state = self.accelerator, self.state
        accelerator.wait_for_everyone()
        cached = self.best_dev_rows
        metrics, threshold = final_evaluation(
            self.out_dir, self.data, accelerator, self.settings.train.eval_batch_size,
            self.tokenizer.pad_token_id, tune_threshold=self.settings.train.tune_threshold,
            dev_rows=cached[1] if cached and cached[0] == state.best_epoch else None)
        if self.main:
            summary = {"best_epoch": state.best_epoch, "best_dev_score": state.best_score,
                       "relation_threshold": threshold,
                       "stopped_early": self.stopped_early, "global_step": state.global_step,
                       "train_seconds_this_session": round(elapsed, 2),
                       "train_tokens_this_session": self.tokens_seen,
                       "processes": accelerator.num_processes,
                       "mixed_precision": accelerator.mixed_precision,
                       "peft": self.settings.model.peft, **self.param_counts,
                       **({"head_warmup": state.head_warmup} if state.head_warmup else {})}
            (self.out_dir / "history.json").write_text(
                json.dumps({"summary": summary, "epochs": state.history}, indent=2) + "\n",
                encoding="utf-8")
        accelerator.end_training()
        return metrics


#: Weight files of a model save (one file or shards and their index): a previous save's
#: are not carried into the next one.
WEIGHT_FILE = re.compile(
    r"(model|pytorch_model)(-\d{5}-of-\d{5})?\.(safetensors|bin)(\.index\.json)?"
)


#: Siblings ``OUT.partial-XXXX`` / ``OUT.old-XXXX`` that :func:`replace_model_dir` makes.
SWAP_SIBLING = re.compile(r"\.(partial|old)-[0-9a-f]{8}")

_fs_logger = logging.getLogger(__name__)


def replace_model_dir(out_dir: Path, write: Callable[[Path], None]) -> None:
    """Save a model into ``out_dir`` so that ``out_dir`` always holds either the previous
    complete model or the new complete one, never a mix of the two.

    ``write(new_dir)`` writes the model into a fresh sibling ``OUT.partial-XXXX`` (the same
    filesystem); every other entry of ``out_dir`` (checkpoints, logs, settings, figures;
    not the previous weight files) is hard-linked into it, or copied where the filesystem
    has no hard links. Then the two directories are exchanged in one atomic rename
    (Linux ``renameat2(RENAME_EXCHANGE)``) and the old model, now under the temporary
    name, deleted. Where the system or filesystem cannot exchange, ``out_dir`` is renamed
    aside to ``OUT.old-XXXX`` and the new directory renamed in: a kill between those two
    renames leaves no ``out_dir``, which :func:`recover_model_dir` (run first by the next
    save and by the next ``xlre train``) puts back from ``OUT.old-XXXX``. On an error
    ``out_dir`` is left as it was and the temporary directory removed.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    recover_model_dir(out_dir)
    while True:
        suffix = secrets.token_hex(4)
        new_dir = out_dir.with_name(f"{out_dir.name}.partial-{suffix}")
        try:
            new_dir.mkdir()
            break
        except FileExistsError:
            continue
    old_dir = out_dir.with_name(f"{out_dir.name}.old-{suffix}")
    try:
        write(new_dir)
        if not out_dir.exists():
            new_dir.rename(out_dir)
            return
        shutil.copymode(out_dir, new_dir)
        for entry in out_dir.iterdir():
            target = new_dir / entry.name
            if target.exists() or target.is_symlink() or WEIGHT_FILE.fullmatch(entry.name):
                continue
            _carry(entry, target)
        if _exchange(new_dir, out_dir):
            old_dir = new_dir  # the previous model, under the temporary name
        else:
            out_dir.rename(old_dir)
            try:
                new_dir.rename(out_dir)
            except BaseException:
                old_dir.rename(out_dir)
                raise
    except BaseException:
        if old_dir is not new_dir:
            shutil.rmtree(new_dir, ignore_errors=True)
        raise
    shutil.rmtree(old_dir, ignore_errors=True)


def recover_model_dir(out_dir: Path) -> None:
    """Clean up after a :func:`replace_model_dir` that was killed: with no ``out_dir`` but
    an ``OUT.old-XXXX`` (killed between the two renames of the fallback swap), the old
    directory is renamed back to ``out_dir``; then the leftover ``OUT.partial-XXXX`` and
    ``OUT.old-XXXX`` siblings are deleted, each with a warning. Never reads them as the
    model. Run on one process only."""
    out_dir = Path(out_dir)
    if not out_dir.parent.is_dir():
        return
    prefix = out_dir.name
    leftovers = sorted(
        p for p in out_dir.parent.iterdir()
        if p.name.startswith(prefix) and SWAP_SIBLING.fullmatch(p.name[len(prefix):])
        and p.is_dir() and not p.is_symlink()
    )
    if not out_dir.exists() and not out_dir.is_symlink():
        olds = [p for p in leftovers if p.name[len(prefix):].startswith(".old-")]
        if olds:
            back = max(olds, key=lambda p: p.stat().st_mtime_ns)
            back.rename(out_dir)
            leftovers.remove(back)
            _fs_logger.warning("%s was missing (a save of the best model was killed while "
                               "swapping it in): put back the previous one from %s",
                               out_dir, back.name)
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
        _fs_logger.warning("removed %s, left by a save of the best model that was killed",
                           path)


#: Linux ``renameat2`` flag and "relative to the working directory".
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` in one atomic rename; ``False`` (nothing done) where
    the system or the filesystem cannot (not Linux, no ``renameat2``, unsupported flag)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _carry(src: Path, dst: Path) -> None:
    """Recreate ``src`` at ``dst``: files hard-linked (copied where links fail), symbolic
    links as links."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(src), str(dst))


def final_evaluation(out_dir: Path, data: RelationData, accelerator: Any, batch_size: int,
                     pad_id: int, tune_threshold: bool = False,
                     dev_rows: list[dict[str, Any]] | None = None,
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reload the best model from ``out_dir``; write dev and test figures to metrics.json.

    With ``tune_threshold`` the relation threshold is chosen on dev
    (:func:`xlre.evaluation.choose_threshold`) and written into ``out_dir/config.json``
    before test is scored with it. ``dev_rows``: the best model's dev predictions, when
    the caller has them. Returns ``(metrics, {"value", "chosen_on", "dev_score"})``."""
    if not (out_dir / "config.json").exists():
        raise TrainError(f"{out_dir}: no best model was saved (did any epoch finish?)")
    best = XlreModel.from_pretrained(out_dir)
    best = accelerator.prepare(best)
    core = accelerator.unwrap_model(best)
    dev = data.splits["dev"]
    if dev_rows is None:
        dev_rows = predict_split(best, dev, len(data.labels.relations), pad_id, batch_size,
                                 accelerator)
    dev_metrics, dev_curves = score_split(core, dev, dev_rows, data.labels)
    threshold = {"value": core.config.relation_threshold, "chosen_on": "settings",
                 "dev_score": None}
    chosen = choose_threshold(dev_metrics[ALL]) if tune_threshold and dev_metrics else None
    if chosen is not None:
        threshold = {"value": chosen[0], "chosen_on": "dev", "dev_score": chosen[1]}
        if chosen[0] != core.config.relation_threshold:
            core.config.relation_threshold = chosen[0]
            if accelerator.is_main_process:
                tmp = out_dir / "config.json.partial"
                core.config.to_json_file(tmp)
                tmp.replace(out_dir / "config.json")
            dev_metrics, dev_curves = score_split(core, dev, dev_rows, data.labels)
        logger.info("relation threshold %.4g, chosen on dev (score %.4f there)", *chosen)
    elif tune_threshold:
        logger.warning("dev gives no basis for a relation threshold (no relation found at "
                       "any threshold); keeping model.relation_threshold=%g",
                       core.config.relation_threshold)
    metrics: dict[str, Any] = {"dev": dev_metrics}
    curves = {"dev": dev_curves}
    metrics["test"], curves["test"] = evaluate_split(
        best, data.splits["test"], data.labels, pad_id, batch_size, accelerator)
    if accelerator.is_main_process:
        for split in ("dev", "test"):
            write_pr_png(curves[split], out_dir / f"pr_curve_{split}.png",
                         f"Held-out PR curve, {split} split")
        (out_dir / "metrics.json").write_text(
            json.dumps(to_jsonable(metrics), indent=2) + "\n", encoding="utf-8")
    return metrics, threshold
