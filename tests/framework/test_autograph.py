"""autograph: Python control flow on tensors inside @function, compared with running the same
function eagerly; and the diagnostics for what cannot be converted."""

import re

import numpy as np
import pytest

import framework as tf
from framework.errors import ShapeError, TracingError


def branchy(x):
    if tf.reduce_sum(x) > 0:
        y = x * 2.0
    elif tf.reduce_max(x) > 5:
        y = x + 100.0
    else:
        y = -x
    return y


def counted(x, n):
    i = 0
    s = tf.zeros_like(x)
    while i < n:
        s = s + x * tf.cast(i, tf.float32)
        i += 1
    return s, i


def skip_and_stop(x):
    total = 0.0
    for v in x:
        if v < 0:
            continue
        if v > 10:
            break
        total += v
    return total


def early_return(x):
    if tf.reduce_sum(x) > 0:
        return x * 3.0
    return x - 1.0


def ranged(x, n):
    acc = tf.zeros_like(x)
    for i in tf.range(n):
        acc = acc + tf.cast(i, tf.float32) * x
    return acc


def countdown(x, n):
    acc = tf.zeros_like(x)
    for i in tf.range(n, 0, -2):
        acc = acc + tf.cast(i, tf.float32) * x
    return acc


def first_big(x):
    for v in x:
        if v > 4.0:
            return v * 10.0
    return -1.0


def doubling(x):
    while tf.reduce_sum(x) < 100.0:
        if tf.reduce_max(x) > 20.0:
            return x
        x = x * 2.0
    return -x


def first_negative(m):
    for row in m:
        for v in row:
            if v < 0:
                return v
    return tf.constant(0.0)


def python_stays_python(x):
    k = 0
    for i in range(3):
        k = k + i
    if k == 3 and tf.reduce_sum(x) > 1 or not tf.reduce_all(x > -100):
        x = x + k
    return x


def while_with_break(x):
    i = tf.constant(0)
    s = tf.constant(0.0)
    while i < 10:
        s = s + x[i % 4]
        if s > 5.0:
            break
        i += 1
    return s, i


def nested_loops(m):
    total = tf.constant(0.0)
    for row in m:
        j = 0
        while j < 2:
            if row[j] > 0:
                total += row[j]
            j += 1
    return total


CASES = [
    (branchy, [[1.0, 2.0]]), (branchy, [[-1.0, -2.0]]), (branchy, [[-10.0, 6.0]]),
    (counted, [[1.0, 2.0], 4]), (skip_and_stop, [[1.0, -2.0, 3.0, 11.0, 5.0]]),
    (skip_and_stop, [[1.0, 2.0]]), (early_return, [[1.0, 2.0]]), (early_return, [[-1.0, -2.0]]),
    (ranged, [[1.0, 2.0], 5]), (countdown, [[1.0, 2.0], 5]), (countdown, [[1.0], 0]),
    (python_stays_python, [[1.0, 2.0]]),
    (python_stays_python, [[-1.0, -2.0]]),
    (first_big, [[1.0, 5.0, 7.0]]), (first_big, [[1.0, 2.0]]), (doubling, [[1.0, 2.0]]),
    (doubling, [[1.0, 30.0]]), (doubling, [[10.0, 60.0]]),
    (first_negative, [[[1.0, 2.0], [3.0, -4.0]]]), (first_negative, [[[1.0, 2.0], [3.0, 4.0]]]),
    (while_with_break, [[1.0, 0.5, 2.0, 0.25]]),
    (while_with_break, [[0.1, 0.1, 0.1, 0.1]]), (nested_loops, [[[1.0, -2.0], [3.0, 4.0]]]),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0].__name__}-{i}" for i, c in
                                             enumerate(CASES)])
def test_converted_function_matches_eager(case):
    fn, args = case
    args = [tf.constant(np.asarray(a, np.float32)) if isinstance(a, list) else tf.constant(a)
            for a in args]
    eager = tf.nest.flatten(fn(*args))
    traced_fn = tf.function(fn)
    traced = tf.nest.flatten(traced_fn(*args))
    for e, t in zip(eager, traced):
        np.testing.assert_allclose(np.asarray(t), np.asarray(e), rtol=1e-6)
    graph = traced_fn.get_concrete_function(*args).ir()
    if fn is not python_stays_python:  # a tensor condition became graph control flow
        assert re.search(r"= (cond|while_loop)", graph)


def test_ir_locations_and_tracebacks_point_at_the_users_lines():
    f = tf.function(branchy)
    ir = f.get_concrete_function(tf.constant([1.0])).ir()
    line = branchy.__code__.co_firstlineno
    assert f'test_autograph.py":{line + 2}' in ir  # y = x * 2.0
    with pytest.raises(Exception) as err:
        tf.function(branchy)(tf.constant([[1.0, 2.0]], tf.int32))
    frames = [fr.name for fr in err.traceback]
    assert not any("__" in n for n in frames), frames  # no __factory, no loop_body__3


def bad_branch(x):
    if tf.reduce_sum(x) > 0:
        y = tf.matmul(x, x)  # rank 1: an error raised while the branch is traced
    else:
        y = x
    return y


def test_generated_functions_carry_the_users_name():
    with pytest.raises(ShapeError) as err:
        tf.function(bad_branch)(tf.constant([1.0]))
    user_frames = [fr for fr in err.traceback if fr.path.name == "test_autograph.py"]
    assert [fr.lineno + 1 for fr in user_frames][-1] == _line_of(bad_branch, "tf.matmul")
    assert {fr.name for fr in user_frames} == {"bad_branch", "test_generated_functions_carry_"
                                               "the_users_name"}


def test_to_code_shows_the_converted_function():
    code = tf.autograph.to_code(tf.function(skip_and_stop))
    assert "ag__.for_stmt" in code and "ag__.if_stmt" in code and "break_" in code


def test_autograph_false_leaves_python_if_an_error():
    f = tf.function(branchy, autograph=False)
    with pytest.raises(TracingError, match="cond"):
        f(tf.constant([1.0]))


def test_converted_loop_is_differentiable_when_bounded():
    @tf.function
    def f(x):
        with tf.GradientTape() as t:
            t.watch(x)
            acc = x
            for _ in tf.range(3):
                acc = acc * x
            loss = tf.reduce_sum(acc)
        return t.gradient(loss, x)
    np.testing.assert_allclose(f(tf.constant([1.0, 2.0])).numpy(), [4.0, 32.0], rtol=1e-6)


# -- diagnostics: each names the variable or construct and the user's line ------------------------


def _line_of(fn, text):
    import inspect
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, s in enumerate(lines) if text in s)


def one_branch(x):
    if tf.reduce_sum(x) > 0:
        z = x * 2.0
    return z + 1.0


def test_variable_defined_in_one_branch():
    with pytest.raises(TracingError) as e:
        tf.function(one_branch)(tf.constant([1.0]))
    msg = str(e.value)
    assert "`z`" in msg and "false branch" in msg
    assert f"test_autograph.py:{_line_of(one_branch, 'if tf.reduce_sum')}" in msg


def grows(x):
    i = tf.constant(0)
    while i < 3:
        x = tf.concat([x, x], 0)
        i += 1
    return x


def test_loop_variable_changing_shape():
    with pytest.raises(ShapeError) as e:
        tf.function(grows)(tf.constant([1.0]))
    msg = str(e.value)
    assert "`x`" in msg and "f32[1]" in msg and "f32[2]" in msg
    assert f"test_autograph.py:{_line_of(grows, 'while i < 3')}" in msg


def prints(x):
    while tf.reduce_sum(x) < 10.0:
        print("step", x)
        x = x * 2.0
    return x


def appends(x):
    seen = []
    for v in x:
        seen.append(v)
    return x


def test_side_effects_that_would_run_once():
    with pytest.raises(TracingError) as e:
        tf.function(prints)(tf.constant([1.0]))
    assert "print()" in str(e.value) and \
        f"test_autograph.py:{_line_of(prints, 'print(')}" in str(e.value)
    with pytest.raises(TracingError) as e:
        tf.function(appends)(tf.constant([1.0, 2.0]))
    assert "append" in str(e.value) and \
        f"test_autograph.py:{_line_of(appends, 'seen.append')}" in str(e.value)


def return_one_path(x):
    if tf.reduce_sum(x) > 0:
        return x
    elif tf.reduce_sum(x) < -5:
        return -x


def test_return_on_one_path_only():
    with pytest.raises(TracingError) as e:
        tf.function(return_one_path)(tf.constant([1.0]))
    assert "return" in str(e.value) and "every path" in str(e.value)
    assert f"test_autograph.py:{_line_of(return_one_path, 'elif')}" in str(e.value)


def undefined_carry(x):
    i = 0
    while i < tf.reduce_sum(x):
        total = total + 1.0  # noqa: F821
        i += 1
    return total  # noqa: F821


def test_loop_variable_without_initial_value():
    with pytest.raises(TracingError) as e:
        tf.function(undefined_carry)(tf.constant([3.0]))
    assert "`total`" in str(e.value) and "before the loop" in str(e.value)
    assert f"test_autograph.py:{_line_of(undefined_carry, 'while i')}" in str(e.value)


def loop_with_else(x):
    while tf.reduce_sum(x) < 10.0:
        x = x * 2.0
    else:
        x = x + 1.0
    return x


def test_unconvertible_loop_names_the_construct_and_line():
    with pytest.raises(TracingError) as e:
        tf.function(loop_with_else)(tf.constant([1.0]))
    msg = str(e.value)
    assert "`while`" in msg and "`else`" in msg
    assert f"test_autograph.py:{_line_of(loop_with_else, 'while tf.reduce_sum')}" in msg


def test_variable_assigned_in_a_loop_body():
    v = tf.Variable(0.0, name="counter")

    def f(n):
        for _ in tf.range(n):
            v.assign_add(1.0)
        return v.read_value()
    with pytest.raises(TracingError) as e:
        tf.function(f)(tf.constant(3))
    assert "assigns variable 'counter" in str(e.value)
    assert f"test_autograph.py:{_line_of(f, 'for _ in')}" in str(e.value)


# -- the user's functions called from a converted one, and Keras call methods, convert too -------


def clip_norm(v, limit):
    n = tf.sqrt(tf.reduce_sum(v * v))
    if n > limit:
        v = v * (limit / n)
    return v


def test_called_functions_are_converted():
    f = tf.function(lambda x: clip_norm(x, 1.0) + clip_norm(x * 0.1, 1.0))
    np.testing.assert_allclose(f(tf.constant([3.0, 4.0])).numpy(), [0.9, 1.2], rtol=1e-6)
    assert f.get_concrete_function(tf.constant([3.0, 4.0])).ir().count("= cond") == 2


def test_a_layers_call_with_a_tensor_if_is_converted():
    from framework import keras

    class Gate(keras.layers.Layer):
        def call(self, x):
            if tf.reduce_mean(x) > 0:
                return x * 2.0
            return x

    g = tf.function(lambda x: Gate()(x))
    assert g(tf.constant([[1.0, 2.0]])).numpy().tolist() == [[2.0, 4.0]]
    assert g(tf.constant([[-1.0, -2.0]])).numpy().tolist() == [[-1.0, -2.0]]
    model = keras.Sequential([keras.Input((2,)), Gate(), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    hist = model.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), epochs=2,
                     verbose=0)
    assert hist.history["loss"][1] < hist.history["loss"][0]


def test_lambdas_and_conditional_expressions_convert():
    sign = tf.function(lambda x: x if tf.reduce_sum(x) > 0 else -x)
    both = tf.function(
        lambda x: tf.reduce_sum(x) > 0 and tf.reduce_max(x) < 10)  # a continuation line
    assert sign(tf.constant([-1.0, -2.0])).numpy().tolist() == [1.0, 2.0]
    assert sign(tf.constant([3.0])).numpy().tolist() == [3.0]
    assert bool(both(tf.constant([1.0, 2.0]))) and not bool(both(tf.constant([1.0, 20.0])))
    assert "ag__.if_exp" in tf.autograph.to_code(sign)
