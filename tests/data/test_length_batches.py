"""Evaluation batches cut by count and padded seconds (``sonolab.data.length_batches``)."""

from sonolab.data.length_batches import LengthBatches, length_batches


def test_batches_are_longest_first_within_the_count_and_the_padded_budget():
    lengths = [2.0, 30.0, 4.0, 4.0, 10.0, 3.0, 2.0, 9.0]
    batches = length_batches(lengths, max_items=3, max_padded=20.0)
    # 30 s exceeds the budget, a batch alone; 10 and 9 pad to 20 s (a third would make 30); 4, 4
    # and 3 fill the count; 2 and 2 remain. Equal lengths keep their index order.
    assert batches == [[1], [4, 7], [2, 3, 5], [0, 6]]
    for batch in batches:
        assert len(batch) == 1 or len(batch) * lengths[batch[0]] <= 20.0
        assert [lengths[i] for i in batch] == sorted((lengths[i] for i in batch), reverse=True)


def test_without_a_budget_only_the_count_cuts():
    assert length_batches([1.0, 5.0, 3.0, 2.0, 4.0], max_items=2) == [[1, 4], [2, 3], [0]]
    assert length_batches([1.0, 5.0], max_items=1, max_padded=100.0) == [[1], [0]]


def test_grouped_dataset_collates_one_batch_per_item():
    items = ["a", "b", "c", "d"]
    grouped = LengthBatches(items, [[3, 1], [0], [2]], collate=list)
    assert len(grouped) == 3
    assert grouped[0] == ["d", "b"]
    assert grouped.collate_one([grouped[0]]) == ["d", "b"]
