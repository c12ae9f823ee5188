"""Random-weight models: a checkpoint's exact shape, weights from a seed, never mistaken for the real model."""

import json
import shutil

import pytest

from pytest_llmperf import models
from pytest_llmperf.gating.baselines import BaselineKey
from pytest_llmperf.engines import EngineOptions, GenerationParams, load_engine
from pytest_llmperf.errors import InputError, UsageError

SHAPE_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")
#: A two-layer model with the embedded model's vocabulary: the engine tests load it in a second.
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            intermediate_size=128)


@pytest.fixture(scope="module")
def tiny_shape(embedded_model, tmp_path_factory):
    """A folder with a small config and the embedded model's tokenizer (no weights)."""
    folder = tmp_path_factory.mktemp("tiny-shape")
    for name in SHAPE_FILES:
        shutil.copy(embedded_model.path / name, folder / name)
    config = json.loads((embedded_model.path / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **TINY}))
    return folder


def test_embedded_random_has_the_embedded_shape_and_says_random(embedded_model):
    spec = models.resolve("embedded-random")
    assert spec.name == "SmolLM2-135M-Instruct (random weights, seed 0)"
    assert spec.random_seed == 0 and not spec.embedded
    assert (spec.path / "config.json").read_bytes() == (embedded_model.path / "config.json").read_bytes()
    assert (spec.path / "tokenizer.json").is_file()
    assert not list(spec.path.glob("*.safetensors")), "the real weights must never be copied"
    assert models.parameter_count(spec) == models.parameter_count(embedded_model) == 134_515_008
    marker = json.loads((spec.path / models.RANDOM_MARKER).read_text())
    assert marker["seed"] == 0 and marker["source"] == "SmolLM2-135M-Instruct"


def test_the_random_model_has_baselines_of_its_own(embedded_model):
    real = BaselineKey(embedded_model.name, "NVIDIA H200", "transformers", "bfloat16")
    random = BaselineKey(models.resolve("embedded-random").name, "NVIDIA H200", "transformers", "bfloat16")
    other_seed = BaselineKey(models.resolve("embedded-random@7").name, "NVIDIA H200", "transformers", "bfloat16")
    assert len({real.relative_path(), random.relative_path(), other_seed.relative_path()}) == 3
    assert "random-weights-seed-0" in str(random.relative_path())


def test_random_folder_syntax_and_seed(tiny_shape):
    spec = models.resolve(f"random@3:{tiny_shape}")
    assert spec.name == f"{tiny_shape.name} (random weights, seed 3)" and spec.random_seed == 3
    assert models.random_weights_seed(spec.path) == 3
    assert models.resolve(f"random:{tiny_shape}").random_seed == models.DEFAULT_SEED
    assert models.resolve(f"random@4:{tiny_shape}").path != spec.path


@pytest.mark.parametrize("value, problem", [
    ("random@x:{folder}", "seed 'x' is not a whole number"),
    ("random@-1:{folder}", "seed '-1' is not a whole number"),
    ("embedded-random@", "seed '' is not a whole number"),
    ("random:{folder}/missing", "is not a folder"),
])
def test_bad_random_model_names_say_what_to_write(tiny_shape, value, problem):
    with pytest.raises(UsageError) as caught:
        models.resolve(value.format(folder=tiny_shape))
    assert problem in str(caught.value) and "--llmperf-model" in str(caught.value)


def test_a_folder_without_config_or_tokenizer_is_refused(tmp_path, tiny_shape):
    with pytest.raises(InputError, match="has no config.json"):
        models.resolve(f"random:{tmp_path}")
    shutil.copy(tiny_shape / "config.json", tmp_path / "config.json")
    with pytest.raises(InputError, match="has no tokenizer files"):
        models.resolve(f"random:{tmp_path}")


def test_a_damaged_marker_is_reported(tmp_path):
    (tmp_path / models.RANDOM_MARKER).write_text('{"sed": 1}')
    with pytest.raises(InputError, match="not a valid random-weight marker"):
        models.random_weights_seed(tmp_path)


def test_same_seed_same_weights_other_seed_other_weights(tiny_shape):
    import torch

    def weights(seed):
        model = models.build_random_model(models.resolve(f"random@{seed}:{tiny_shape}").path, torch.float32, "cpu")
        return model.state_dict()

    first, again, other = weights(1), weights(1), weights(2)
    assert all(torch.equal(first[name], again[name]) for name in first)
    matrices = [name for name in first if first[name].dim() >= 2]
    assert not any(torch.equal(first[name], other[name]) for name in matrices)
    norm = next(name for name in first if "norm" in name)
    assert torch.all(first[norm] == 1)
    std = first["model.embed_tokens.weight"].std().item()
    assert 0.019 < std < 0.021  # normal(0, initializer_range = 0.02)


def test_the_engine_names_the_seed_and_generates_the_same_twice(tiny_shape):
    spec = models.resolve(f"random@5:{tiny_shape}")
    outputs = []
    for _ in range(2):
        engine = load_engine("transformers", EngineOptions(str(spec.path), spec.name, "cpu"))
        assert engine.info.model == "tiny-shape0 (random weights, seed 5)"
        assert "random weights, seed 5" in engine.info.notes
        outputs.append([g.token_ids for g in engine.generate([[1, 2, 3, 4], [5, 6]], GenerationParams(8, 8, True))])
        engine.close()
    assert outputs[0] == outputs[1] and all(len(tokens) == 8 for tokens in outputs[0])


def test_a_suite_run_records_the_random_model_by_name(pytester, tiny_shape):
    pytester.makepyfile(test_one="""
        from pytest_llmperf.engines import GenerationParams

        def test_generates(llmperf_engine, llmperf_check):
            generations = llmperf_engine.generate([[1, 2, 3]], GenerationParams(4, 4, True))
            llmperf_check.engine(llmperf_engine)
            assert len(generations[0].token_ids) == 4
            llmperf_check.verify()
    """)
    out = pytester.path / "out"
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmperf-device", "cpu",
                                "--llmperf-model", f"random@6:{tiny_shape}", "--llmperf-out", str(out))
    result.assert_outcomes(passed=1)
    engines = json.loads((out / "results.json").read_text())["engines"]
    (info,) = engines.values()
    assert info["model"] == "tiny-shape0 (random weights, seed 6)" and "random weights, seed 6" in info["notes"]


def test_a_bad_seed_fails_the_suite_with_the_fix(pytester, tiny_shape):
    pytester.makepyfile(test_one="def test_generates(llmperf_engine):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmperf-device", "cpu",
                                "--llmperf-model", f"random@seven:{tiny_shape}")
    result.assert_outcomes(errors=1)  # the engine fixture fails at setup
    result.stdout.fnmatch_lines(["*seed 'seven' is not a whole number*random@0:FOLDER*"])
